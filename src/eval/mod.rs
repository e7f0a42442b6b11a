//! Evaluation runs: reading question files (FORMATS.md §2), asking each
//! question, and the metrics of FORMATS.md §3 with the misses listed.

use crate::assistant::{Assistant, Outcome};
use crate::domain::{Action, Channel, Reason, Turn};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: cannot read: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

/// One source or several, any of which counts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ExpectedSources {
    One(String),
    Any(Vec<String>),
}

impl ExpectedSources {
    pub fn contains(&self, source: &str) -> bool {
        match self {
            ExpectedSources::One(one) => one == source,
            ExpectedSources::Any(any) => any.iter().any(|s| s == source),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Expectation {
    pub action: Action,
    pub source: Option<ExpectedSources>,
    #[serde(default)]
    pub mentions: Vec<String>,
    pub reason: Option<Reason>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub id: String,
    #[serde(default)]
    pub channel: Channel,
    pub message: String,
    pub expect: Expectation,
    #[serde(default)]
    pub history: Vec<Turn>,
}

/// Reads a `.jsonl` question file; blank lines and `#` lines are skipped.
pub fn read_questions(path: &Path) -> Result<Vec<Question>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_questions(&path.display().to_string(), &text)
}

pub fn parse_questions(path: &str, text: &str) -> Result<Vec<Question>, EvalError> {
    let mut questions = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let question: Question = serde_json::from_str(trimmed).map_err(|e| EvalError::Parse {
            path: path.to_string(),
            line: index + 1,
            message: e.to_string(),
        })?;
        questions.push(question);
    }
    Ok(questions)
}

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
}

impl QuestionResult {
    pub fn is_miss(&self) -> bool {
        self.action != self.expected_action
            || self.source_top1 == Some(false)
            || self.mentions_ok == Some(false)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
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
    pub questions_per_second: f64,
    #[serde(skip)]
    pub results: Vec<QuestionResult>,
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
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
    let mentions_ok = if retrieval_only
        || question.expect.mentions.is_empty()
        || question.expect.action != Action::Answer
    {
        None
    } else {
        let reply = outcome.reply.to_lowercase();
        Some(
            question
                .expect
                .mentions
                .iter()
                .all(|m| reply.contains(&m.to_lowercase())),
        )
    };
    QuestionResult {
        id: question.id.clone(),
        message: question.message.clone(),
        expected_action: question.expect.action,
        expected_reason: question.expect.reason,
        expected_source: expected_source.map(|s| match s {
            ExpectedSources::One(one) => one.clone(),
            ExpectedSources::Any(any) => any.join(" | "),
        }),
        action: decision.action,
        reason: decision.reason,
        confidence: decision.confidence,
        sources,
        source_top1,
        mentions_ok,
        ungrounded: None,
        latency_ms: outcome.timings.total,
        explanation: outcome.explanation.clone(),
        top_scores: outcome.top_scores,
    }
}

/// Asks every question and computes the report.
pub fn run(
    assistant: &Assistant,
    questions: &[Question],
    retrieval_only: bool,
) -> Result<Report, crate::inference::ModelError> {
    let started = std::time::Instant::now();
    let mut results = Vec::with_capacity(questions.len());
    for chunk in questions.chunks(256) {
        let batch: Vec<(&str, Channel, &[Turn])> = chunk
            .iter()
            .map(|q| (q.message.as_str(), q.channel, q.history.as_slice()))
            .collect();
        let outcomes = assistant.ask_many(&batch)?;
        for (question, outcome) in chunk.iter().zip(outcomes) {
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
    Report {
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
        questions_per_second: if elapsed_seconds > 0.0 {
            round(results.len() as f64 / elapsed_seconds)
        } else {
            0.0
        },
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
    fn question_lines_parse_with_lists_history_and_unknown_fields() {
        let text = "# comment\n\n{\"id\":\"q1\",\"channel\":\"sms\",\"message\":\"hi\",\"note\":\"x\",\"expect\":{\"action\":\"answer\",\"source\":[\"a#b\",\"c#d\"],\"mentions\":[\"$5\"]},\"history\":[{\"from\":\"customer\",\"text\":\"yo\"}]}\n{\"id\":\"q2\",\"channel\":\"email\",\"message\":\"person pls\",\"expect\":{\"action\":\"escalate\",\"reason\":\"human_requested\"}}\n";
        let questions = parse_questions("q.jsonl", text).unwrap();
        assert_eq!(questions.len(), 2);
        assert!(questions[0].expect.source.as_ref().unwrap().contains("c#d"));
        assert_eq!(questions[0].history.len(), 1);
        assert_eq!(questions[1].expect.reason, Some(Reason::HumanRequested));
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let error = parse_questions(
            "q.jsonl",
            "\n{\"id\":\"q1\",\"message\":\"x\",\"expect\":{\"action\":\"maybe\"}}\n",
        )
        .unwrap_err();
        assert!(error.to_string().starts_with("q.jsonl:2: "), "{error}");
    }

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
