//! Evaluation runs: reading question files (FORMATS.md §2), asking each
//! question, and the metrics of FORMATS.md §3 with the misses listed.

use crate::assistant::policy::ReplySource;
use crate::assistant::{Assistant, Outcome};
use crate::domain::{Action, Channel, Reason, Turn};
use crate::knowledge::EntryKind;
use serde::Serialize;
use std::collections::BTreeMap;

mod forms;
mod questions;

pub use forms::{forms_report, FormsReport};
pub use questions::{
    parse_questions, read_questions, EvalError, Expectation, ExpectedSources, Question,
};

/// The result of one question, kept for the misses list.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionResult {
    pub id: String,
    pub message: String,
    pub expected_action: Action,
    pub expected_reason: Option<Reason>,
    pub expected_source: Option<String>,
    pub action: Action,
    pub reason: Option<Reason>,
    pub confidence: f32,
    pub sources: Vec<String>,
    pub source_top1: Option<bool>,
    pub mentions_ok: Option<bool>,
    pub ungrounded: Option<bool>,
    pub latency_ms: f64,
    pub explanation: String,
    pub top_scores: [f32; 2],
    /// Kind of the answer's first source (answered questions only).
    pub kind: Option<&'static str>,
    /// The answer joins two entries.
    pub joined: bool,
    /// The policy's choice for this answer.
    pub chosen: Option<ReplySource>,
    /// Generation ran and its reply passed (Some only when generation ran).
    pub generated: Option<bool>,
    /// The mentions check on the owner's text, whatever was sent.
    pub owner_text_mentions_ok: Option<bool>,
    pub unsupported_sentences: usize,
    pub fact_rejections: usize,
    pub out_of_time: bool,
    pub retrieve_ms: f64,
    /// Wall-clock generation time (all attempts), when generation ran.
    pub generate_ms: Option<f64>,
    /// Why each rejected attempt was rejected, and what each attempt cost.
    pub rejected: Vec<String>,
    pub attempts: Vec<crate::assistant::generate::Attempt>,
    /// The action as decided, `collect` included (`action` above counts a
    /// form being collected as the escalation it leads to).
    pub form_action: Action,
    pub expected_form_action: Action,
    /// The form after this line's messages, with the captured values.
    pub form: Option<crate::assistant::forms::FormView>,
    pub expected_form: Option<String>,
    pub expected_fields: Option<BTreeMap<String, serde_json::Value>>,
    /// What the customer would be sent (for `--details`).
    pub reply: String,
}

impl QuestionResult {
    pub fn is_miss(&self) -> bool {
        self.action != self.expected_action
            || self.source_top1 == Some(false)
            || self.mentions_ok == Some(false)
            || self.form_miss()
    }

    /// A line expecting a form or fields that did not get exactly them.
    pub fn form_miss(&self) -> bool {
        if self.expected_form.is_none() && self.expected_fields.is_none() {
            return false;
        }
        let captured = self.form.as_ref().map(|f| &f.fields);
        self.form_action != self.expected_form_action
            || self
                .expected_form
                .as_ref()
                .is_some_and(|name| self.form.as_ref().map(|f| &f.name) != Some(name))
            || self.expected_fields.as_ref().is_some_and(|fields| {
                fields
                    .iter()
                    .any(|(name, want)| captured.and_then(|c| c.get(name)) != Some(want))
            })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

/// One row of the per-source-kind breakdown: answered questions whose first
/// source is of this kind (or, for `joined`, answers that join two entries).
#[derive(Debug, Clone, Serialize, Default)]
pub struct KindBreakdown {
    pub answered: usize,
    /// Of those with `mentions`: all present in the sent reply.
    pub mentions_ok: Option<f64>,
    /// The same check on the owner's text, whatever was sent (one run compares both).
    pub owner_text_mentions_ok: Option<f64>,
    pub generation_runs: usize,
    /// Generated replies that passed the verifier and were sent.
    pub generated: usize,
    /// Generation ran but the owner's text was sent.
    pub fell_back: usize,
    /// Fallbacks where the time budget ran out.
    pub out_of_time: usize,
    /// Attempts rejected for a sentence unlike any passage sentence.
    pub unsupported_sentences: usize,
    /// Attempts rejected for a fact not in the passages or left out of the reply.
    pub fact_rejections: usize,
    /// Generation time (all attempts) when generation ran; null otherwise.
    pub generate_ms: Option<Latency>,
}

/// How one escalation rule did on a question set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleBreakdown {
    pub fired: usize,
    /// Fired on a line that expected an escalation (any reason).
    pub expected_escalation: usize,
    pub precision: Option<f64>,
    /// The triggers that fired on lines expecting an answer, with counts.
    pub false_triggers: BTreeMap<String, usize>,
}

/// Retrieval and generation times per question, the stages of `latency_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct StageLatency {
    pub retrieve: Latency,
    /// Only questions where generation ran; null when none did.
    pub generate: Option<Latency>,
}

/// FORMATS.md §3. A metric with nothing to measure is `None` (JSON null).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub questions: usize,
    pub answer_expected: usize,
    pub escalate_expected: usize,
    pub source_top1: Option<f64>,
    pub source_recall_at_5: Option<f64>,
    pub escalation_precision: Option<f64>,
    pub escalation_recall: Option<f64>,
    pub false_escalation_rate: Option<f64>,
    pub mentions_ok: Option<f64>,
    pub ungrounded_replies: Option<usize>,
    pub latency_ms: Latency,
    /// Of expected escalations with a reason that were escalated: the reason matched.
    pub escalation_reason_accuracy: Option<f64>,
    pub answer_accuracy: Option<f64>,
    /// Of answerable questions with an expected source: answered (not
    /// escalated) with an expected source first. The figure a customer feels.
    pub answered_correct: Option<f64>,
    pub questions_per_second: f64,
    /// The answer policy that ran (`owner` when no writer was loaded).
    pub policy: Option<String>,
    pub stage_latency_ms: StageLatency,
    /// Keyed `faq`, `menu_item`, `section`, `business` (first source of each
    /// answer) and `joined` (answers of two entries, also counted by first kind).
    pub by_source_kind: BTreeMap<&'static str, KindBreakdown>,
    /// FORMATS.md §7; null when no line expects a form or fields.
    pub forms: Option<FormsReport>,
    /// Per escalation rule (keyed by its reason): how often it fired and how
    /// often the line expected an escalation, so each rule's precision shows.
    pub by_rule: BTreeMap<String, RuleBreakdown>,
    /// The answer and out-of-scope thresholds in force, and how they were chosen.
    pub thresholds: Option<String>,
    #[serde(skip)]
    pub results: Vec<QuestionResult>,
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

pub fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Faq => "faq",
        EntryKind::MenuItem => "menu_item",
        EntryKind::Section => "section",
        EntryKind::Business => "business",
    }
}

fn latency(mut values: Vec<f64>) -> Option<Latency> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Some(Latency {
        p50: round(percentile(&values, 50.0)),
        p95: round(percentile(&values, 95.0)),
        max: round(values.last().copied().unwrap_or(0.0)),
    })
}

fn breakdown(results: &[&QuestionResult]) -> KindBreakdown {
    let mentions: Vec<bool> = results.iter().filter_map(|r| r.mentions_ok).collect();
    let owner: Vec<bool> = results
        .iter()
        .filter_map(|r| r.owner_text_mentions_ok)
        .collect();
    let ran: Vec<&&QuestionResult> = results.iter().filter(|r| r.generated.is_some()).collect();
    let generated = ran.iter().filter(|r| r.generated == Some(true)).count();
    KindBreakdown {
        answered: results.len(),
        mentions_ok: ratio(mentions.iter().filter(|&&m| m).count(), mentions.len()),
        owner_text_mentions_ok: ratio(owner.iter().filter(|&&m| m).count(), owner.len()),
        generation_runs: ran.len(),
        generated,
        fell_back: ran.len() - generated,
        out_of_time: ran
            .iter()
            .filter(|r| r.generated == Some(false) && r.out_of_time)
            .count(),
        unsupported_sentences: results.iter().map(|r| r.unsupported_sentences).sum(),
        fact_rejections: results.iter().map(|r| r.fact_rejections).sum(),
        generate_ms: latency(ran.iter().filter_map(|r| r.generate_ms).collect()),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Scores one outcome against its expectation.
pub fn score(question: &Question, outcome: &Outcome, retrieval_only: bool) -> QuestionResult {
    let decision = &outcome.decision;
    let sources: Vec<String> = decision.sources.iter().map(|s| s.0.clone()).collect();
    let expected_source = question.expect.source.as_ref();
    let source_top1 = match (question.expect.action, expected_source) {
        (Action::Answer, Some(expected)) => {
            Some(sources.first().is_some_and(|s| expected.contains(s)))
        }
        _ => None,
    };
    let mentions_in = |reply: &str| {
        if retrieval_only
            || question.expect.mentions.is_empty()
            || question.expect.action != Action::Answer
        {
            return None;
        }
        let reply = reply.to_lowercase();
        Some(
            question
                .expect
                .mentions
                .iter()
                .all(|m| reply.contains(&m.to_lowercase())),
        )
    };
    let mentions_ok = mentions_in(&outcome.reply);
    let detail = &outcome.reply_detail;
    // For the §3 metrics a form being collected is the escalation it leads to.
    // A question answered mid-form (the reply carries the owner's answer and
    // its sources) counts as that answer.
    let counted = |action: Action| match action {
        Action::Collect if !decision.sources.is_empty() => Action::Answer,
        Action::Collect => Action::Escalate,
        other => other,
    };
    let answered = decision.action == Action::Answer;
    let generation = detail.generation.as_ref();
    QuestionResult {
        id: question.id.clone(),
        message: question.message.clone(),
        // An expected `collect` that was collected counts as whatever the
        // reply was (an answer mid-form, or the escalation it leads to).
        expected_action: match question.expect.action {
            Action::Collect if decision.action == Action::Collect => counted(Action::Collect),
            Action::Collect => Action::Escalate,
            other => other,
        },
        expected_reason: question.expect.reason,
        expected_source: expected_source.map(|s| match s {
            ExpectedSources::One(one) => one.clone(),
            ExpectedSources::Any(any) => any.join(" | "),
        }),
        action: counted(decision.action),
        reason: decision.reason.or(outcome
            .form
            .as_ref()
            .filter(|_| decision.action == Action::Collect)
            .map(|form| form.escalate_as)),
        confidence: decision.confidence,
        sources,
        source_top1,
        mentions_ok,
        ungrounded: None,
        latency_ms: outcome.timings.total,
        explanation: outcome.explanation.clone(),
        top_scores: outcome.top_scores,
        kind: detail
            .kinds
            .first()
            .filter(|_| answered)
            .map(|&k| kind_name(k)),
        joined: answered && detail.kinds.len() >= 2,
        chosen: detail.chosen,
        generated: generation.map(|_| detail.generated),
        owner_text_mentions_ok: detail.owner_reply.as_deref().and_then(&mentions_in),
        unsupported_sentences: generation.map_or(0, |g| g.unsupported_sentences()),
        fact_rejections: generation.map_or(0, |g| g.fact_rejections()),
        out_of_time: generation.is_some_and(|g| g.out_of_time),
        retrieve_ms: outcome.timings.retrieve,
        generate_ms: generation.map(|g| g.generate_ms),
        rejected: generation
            .map(|g| g.rejected.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        attempts: generation
            .map(|g| g.attempt_costs.clone())
            .unwrap_or_default(),
        form_action: decision.action,
        expected_form_action: question.expect.action,
        form: outcome.form.clone(),
        expected_form: question.expect.form.clone(),
        expected_fields: question.expect.fields.clone(),
        reply: outcome.reply.clone(),
    }
}

/// Asks every question and computes the report.
pub fn run(
    assistant: &Assistant,
    questions: &[Question],
    retrieval_only: bool,
) -> Result<Report, crate::inference::ModelError> {
    let started = std::time::Instant::now();
    let run_time = jiff::Timestamp::now();
    let mut results = Vec::with_capacity(questions.len());
    for chunk in questions.chunks(256) {
        let batch: Vec<(&str, Channel, &[Turn], jiff::Timestamp)> = chunk
            .iter()
            .map(|q| {
                let now = q
                    .now
                    .as_deref()
                    .and_then(|now| assistant.local_time(now).ok());
                (
                    q.message.as_str(),
                    q.channel,
                    q.history.as_slice(),
                    now.unwrap_or(run_time),
                )
            })
            .collect();
        let outcomes = assistant.ask_many_at(&batch)?;
        for ((question, outcome), (_, _, _, now)) in chunk.iter().zip(outcomes).zip(&batch) {
            // The same form engine as the live path: the history's customer
            // turns replayed in order, then this message.
            let state = if question.history.is_empty() {
                None
            } else {
                assistant.replay_history(&question.history, question.channel, *now)?
            };
            let (outcome, _) =
                assistant.apply_forms(outcome, &question.message, question.channel, *now, state)?;
            let mut result = score(question, &outcome, retrieval_only);
            if !retrieval_only && outcome.decision.action == Action::Answer {
                let passages: Vec<&str> = outcome
                    .decision
                    .sources
                    .iter()
                    .filter_map(|s| assistant.index.knowledge.entry(s))
                    .map(|e| e.answer.as_str())
                    .collect();
                result.ungrounded = Some(
                    !crate::assistant::grounding::unsupported_facts(&outcome.reply, &passages)
                        .is_empty(),
                );
            }
            results.push(result);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(summarise(results, elapsed))
}

pub fn summarise(results: Vec<QuestionResult>, elapsed_seconds: f64) -> Report {
    let answer_expected = results
        .iter()
        .filter(|r| r.expected_action == Action::Answer)
        .count();
    let escalate_expected = results.len() - answer_expected;
    let with_source: Vec<&QuestionResult> =
        results.iter().filter(|r| r.source_top1.is_some()).collect();
    let top1 = with_source
        .iter()
        .filter(|r| r.source_top1 == Some(true))
        .count();
    let answered_correct = with_source
        .iter()
        .filter(|r| {
            r.expected_action == Action::Answer
                && r.action == Action::Answer
                && r.source_top1 == Some(true)
        })
        .count();
    let answerable_with_source = with_source
        .iter()
        .filter(|r| r.expected_action == Action::Answer)
        .count();
    let recall5 = with_source
        .iter()
        .filter(|r| {
            let expected: Vec<&str> = r
                .expected_source
                .as_deref()
                .unwrap_or("")
                .split(" | ")
                .collect();
            r.sources
                .iter()
                .take(5)
                .any(|s| expected.contains(&s.as_str()))
        })
        .count();
    let escalated = results
        .iter()
        .filter(|r| r.action == Action::Escalate)
        .count();
    let true_escalations = results
        .iter()
        .filter(|r| r.action == Action::Escalate && r.expected_action == Action::Escalate)
        .count();
    let false_escalations = results
        .iter()
        .filter(|r| r.action == Action::Escalate && r.expected_action == Action::Answer)
        .count();
    let answered_right = results
        .iter()
        .filter(|r| r.action == Action::Answer && r.expected_action == Action::Answer)
        .count();
    let reasons: Vec<&QuestionResult> = results
        .iter()
        .filter(|r| {
            r.expected_action == Action::Escalate
                && r.action == Action::Escalate
                && r.expected_reason.is_some()
        })
        .collect();
    let reason_right = reasons
        .iter()
        .filter(|r| r.reason == r.expected_reason)
        .count();
    let mentions: Vec<bool> = results.iter().filter_map(|r| r.mentions_ok).collect();
    let grounded: Vec<bool> = results.iter().filter_map(|r| r.ungrounded).collect();
    let mut latencies: Vec<f64> = results.iter().map(|r| r.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let mut by_source_kind = BTreeMap::new();
    for kind in ["faq", "menu_item", "section", "business"] {
        let of_kind: Vec<&QuestionResult> =
            results.iter().filter(|r| r.kind == Some(kind)).collect();
        if !of_kind.is_empty() {
            by_source_kind.insert(kind, breakdown(&of_kind));
        }
    }
    let joined: Vec<&QuestionResult> = results.iter().filter(|r| r.joined).collect();
    if !joined.is_empty() {
        by_source_kind.insert("joined", breakdown(&joined));
    }
    let stage_latency_ms = StageLatency {
        retrieve: latency(results.iter().map(|r| r.retrieve_ms).collect()).unwrap_or(Latency {
            p50: 0.0,
            p95: 0.0,
            max: 0.0,
        }),
        generate: latency(results.iter().filter_map(|r| r.generate_ms).collect()),
    };
    let mut by_rule: BTreeMap<String, RuleBreakdown> = BTreeMap::new();
    for result in &results {
        // The decision's explanation names a fired rule as `rule REASON on "TRIGGER"`.
        let Some(rest) = result.explanation.strip_prefix("rule ") else {
            continue;
        };
        let (reason, trigger) = rest.split_once(" on ").unwrap_or((rest, ""));
        let row = by_rule.entry(reason.to_string()).or_default();
        row.fired += 1;
        if result.expected_action == Action::Escalate {
            row.expected_escalation += 1;
        } else {
            *row.false_triggers
                .entry(trigger.trim_matches('"').to_string())
                .or_default() += 1;
        }
    }
    for row in by_rule.values_mut() {
        row.precision = ratio(row.expected_escalation, row.fired);
    }
    Report {
        by_rule,
        thresholds: None,
        questions: results.len(),
        answer_expected,
        escalate_expected,
        source_top1: ratio(top1, with_source.len()),
        source_recall_at_5: ratio(recall5, with_source.len()),
        escalation_precision: ratio(true_escalations, escalated),
        escalation_recall: ratio(true_escalations, escalate_expected),
        false_escalation_rate: ratio(false_escalations, answer_expected),
        mentions_ok: ratio(mentions.iter().filter(|&&m| m).count(), mentions.len()),
        ungrounded_replies: (!grounded.is_empty()).then(|| grounded.iter().filter(|&&u| u).count()),
        latency_ms: Latency {
            p50: round(percentile(&latencies, 50.0)),
            p95: round(percentile(&latencies, 95.0)),
            max: round(latencies.last().copied().unwrap_or(0.0)),
        },
        escalation_reason_accuracy: ratio(reason_right, reasons.len()),
        answer_accuracy: ratio(answered_right, answer_expected),
        answered_correct: ratio(answered_correct, answerable_with_source),
        questions_per_second: if elapsed_seconds > 0.0 {
            round(results.len() as f64 / elapsed_seconds)
        } else {
            0.0
        },
        policy: None,
        stage_latency_ms,
        by_source_kind,
        forms: forms_report(&results),
        results,
    }
}

fn show(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.3}"))
        .unwrap_or_else(|| "n/a".into())
}

/// The human-readable table, with up to `misses` misses listed.
pub fn render_table(report: &Report, misses: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "questions            {:>7}   (answer {}, escalate {})\n",
        report.questions, report.answer_expected, report.escalate_expected
    ));
    let rows = [
        ("source top-1", show(report.source_top1)),
        ("source recall@5", show(report.source_recall_at_5)),
        ("escalation precision", show(report.escalation_precision)),
        ("escalation recall", show(report.escalation_recall)),
        ("false escalation", show(report.false_escalation_rate)),
        ("answered correct", show(report.answered_correct)),
        (
            "escalation reasons",
            show(report.escalation_reason_accuracy),
        ),
        ("mentions ok", show(report.mentions_ok)),
        (
            "ungrounded replies",
            report
                .ungrounded_replies
                .map(|u| u.to_string())
                .unwrap_or_else(|| "n/a".into()),
        ),
    ];
    for (name, value) in rows {
        out.push_str(&format!("{name:<20} {value:>7}\n"));
    }
    out.push_str(&format!(
        "latency ms           p50 {} / p95 {} / max {}   ({} questions/s)\n",
        report.latency_ms.p50,
        report.latency_ms.p95,
        report.latency_ms.max,
        report.questions_per_second
    ));
    if let Some(generate) = &report.stage_latency_ms.generate {
        out.push_str(&format!(
            "stage latency ms     retrieve p50 {} / p95 {}; generate p50 {} / p95 {} / max {}\n",
            report.stage_latency_ms.retrieve.p50,
            report.stage_latency_ms.retrieve.p95,
            generate.p50,
            generate.p95,
            generate.max
        ));
    }
    if !report.by_source_kind.is_empty() {
        out.push_str(&format!(
            "\nby source kind (first source of answered questions; policy {}):\n",
            report.policy.as_deref().unwrap_or("owner")
        ));
        out.push_str("  kind       answered  mentions ok  owner text  generated  fell back  out of time  sentences rej  facts rej  generate ms p50/p95\n");
        for (kind, row) in &report.by_source_kind {
            let generate = row
                .generate_ms
                .as_ref()
                .map(|l| format!("{} / {}", l.p50, l.p95))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "  {kind:<10} {:>8}  {:>11}  {:>10}  {:>9}  {:>9}  {:>11}  {:>13}  {:>9}  {generate}\n",
                row.answered,
                show(row.mentions_ok),
                show(row.owner_text_mentions_ok),
                row.generated,
                row.fell_back,
                row.out_of_time,
                row.unsupported_sentences,
                row.fact_rejections,
            ));
        }
    }
    if let Some(thresholds) = &report.thresholds {
        out.push_str(&format!("\nthresholds: {thresholds}\n"));
    }
    if !report.by_rule.is_empty() {
        out.push_str("\nrules (fired, precision; triggers that fired on answerable lines):\n");
        for (reason, row) in &report.by_rule {
            let wrong: Vec<String> = row
                .false_triggers
                .iter()
                .map(|(t, n)| format!("\"{t}\" ×{n}"))
                .collect();
            out.push_str(&format!(
                "  {reason:<16} {:>4}  {:>7}  {}\n",
                row.fired,
                show(row.precision),
                wrong.join(", ")
            ));
        }
    }
    if let Some(forms) = &report.forms {
        out.push_str(&format!(
            "\nforms ({} lines): started ok {}, fields exact {}, action ok {}, wrong dates {}\n",
            forms.lines,
            show(forms.form_started_ok),
            show(forms.fields_exact),
            show(forms.action_ok),
            forms.wrong_dates
        ));
        let accuracy: Vec<String> = forms
            .field_accuracy
            .iter()
            .map(|(name, value)| format!("{name} {value:.3}"))
            .collect();
        out.push_str(&format!("  field accuracy: {}\n", accuracy.join(", ")));
    }
    let missed: Vec<&QuestionResult> = report.results.iter().filter(|r| r.is_miss()).collect();
    if misses > 0 && !missed.is_empty() {
        out.push_str(&format!(
            "\nmisses ({} of {}, first {}):\n",
            missed.len(),
            report.questions,
            misses.min(missed.len())
        ));
        for miss in missed.iter().take(misses) {
            let got = match miss.reason {
                Some(reason) => format!("escalate/{reason}"),
                None => format!(
                    "answer {}",
                    miss.sources.first().map(String::as_str).unwrap_or("-")
                ),
            };
            let wanted = match (
                miss.expected_action,
                miss.expected_reason,
                &miss.expected_source,
            ) {
                (Action::Escalate, Some(reason), _) => format!("escalate/{reason}"),
                (Action::Escalate, None, _) => "escalate".into(),
                (Action::Answer, _, Some(source)) => format!("answer {source}"),
                (Action::Answer, _, None) => "answer".into(),
                (Action::Collect, _, _) => "collect".into(),
            };
            let (got, wanted) = if miss.form_miss() {
                let captured = miss
                    .form
                    .as_ref()
                    .map(|f| {
                        format!(
                            "{} {}",
                            f.name,
                            serde_json::to_string(&f.fields).unwrap_or_default()
                        )
                    })
                    .unwrap_or_else(|| "no form".into());
                (
                    format!("{} [{captured}]", miss.form_action.as_str()),
                    format!(
                        "{} [{} {}]",
                        miss.expected_form_action.as_str(),
                        miss.expected_form.as_deref().unwrap_or("-"),
                        miss.expected_fields
                            .as_ref()
                            .map(|f| serde_json::to_string(f).unwrap_or_default())
                            .unwrap_or_default()
                    ),
                )
            } else {
                (got, wanted)
            };
            let mut message: String = miss.message.chars().take(70).collect();
            if miss.message.chars().count() > 70 {
                message.push('…');
            }
            out.push_str(&format!(
                "  {:<8} {message:?}\n           wanted {wanted}; got {got} (confidence {:.2}; {})\n",
                miss.id, miss.confidence, miss.explanation
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_with_nothing_to_measure_are_null() {
        let report = summarise(Vec::new(), 1.0);
        assert_eq!(report.source_top1, None);
        assert_eq!(report.escalation_precision, None);
        assert_eq!(report.mentions_ok, None);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["escalation_recall"].is_null());
    }
}
