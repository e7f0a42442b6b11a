//! Deciding what to do with one customer message: escalation rules
//! ([`rules`]), retrieval, then answer (with the owner's own text, [`reply`],
//! or for "are you open now?"-style questions an answer computed from the
//! hours at the message's time, [`hours`]) or escalate with a [`Reason`].
//!
//! Blocking: runs the embedder. No I/O besides what the index already holds.

pub mod calibration;
pub mod catalog;
mod computed_hours;
mod conversation;
pub mod dates;
pub mod forms;
pub mod generate;
pub mod grounding;
pub mod hours;
pub mod policy;
mod product;
pub mod reply;
mod rule_override;
pub mod rules;
mod wording;

use crate::domain::{Action, Channel, Decision, Reason, SourceId, Speaker, Turn};
use crate::index::{Hit, Index};
use crate::inference::embedder::Pooled;
use crate::inference::{Embedder, ModelError};
use crate::knowledge::hours::Schedule;
use crate::knowledge::EntryKind;
pub use calibration::Calibration;
use computed_hours::COMPUTED_HOURS_CONFIDENCE;
use jiff::Timestamp;
use policy::{AnswerPolicy, ReplySource};
use product::{ProductAnswer, MENU_LISTING_CONFIDENCE};
use rules::EscalationRules;
use std::sync::Arc;
use std::time::Instant;
use wording::{about_allergens, asks_about_allergens, asks_something, names};

/// Milliseconds spent per stage, as FORMATS.md §4 reports them.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Timings {
    pub retrieve: f64,
    pub generate: f64,
    pub total: f64,
}

/// The full outcome for one message.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub decision: Decision,
    /// What the customer is sent (the hand-over message when escalating).
    pub reply: String,
    pub timings: Timings,
    /// The rule trigger or retrieval evidence behind the decision, for logs.
    pub explanation: String,
    /// Fused scores of the best and second-best entries (for calibration work).
    pub top_scores: [f32; 2],
    /// How the reply was made, for the per-source-kind eval breakdown.
    pub reply_detail: ReplyDetail,
    /// The form in progress after this message, or the one it completed
    /// (FORMATS.md §7); `None` outside forms.
    pub form: Option<forms::FormView>,
    /// The whole message's unit vector and the best entry's similarity to it,
    /// so the form step reuses them instead of embedding the message again.
    pub message_match: Option<(Vec<f32>, f32)>,
}

impl Outcome {
    /// The FORMATS.md §4 object (`ask --json`, `POST /api/ask`).
    pub fn to_ask_json(&self) -> serde_json::Value {
        let decision = &self.decision;
        let mut json = serde_json::json!({
            "action": decision.action,
            "reason": decision.reason,
            "confidence": (decision.confidence * 1000.0).round() / 1000.0,
            "reply": self.reply,
            "sources": decision.sources,
            "timings_ms": self.timings,
        });
        if let Some(form) = &self.form {
            json["form"] = serde_json::json!({
                "name": form.name,
                "fields": form.fields,
                "missing": form.missing,
            });
        }
        json
    }
}

/// How an answer's reply was made: which entries, what the policy chose, what
/// generation did. Empty for an escalation.
#[derive(Debug, Clone, Default)]
pub struct ReplyDetail {
    /// Kinds of the entries the answer joins, in order.
    pub kinds: Vec<EntryKind>,
    /// The policy's choice; None for an escalation.
    pub chosen: Option<ReplySource>,
    /// The generation attempts, when the policy chose to generate and a writer is loaded.
    pub generation: Option<generate::WriteReport>,
    /// The sent reply is a verified generated one (not the owner's text).
    pub generated: bool,
    /// What the owner's text policy would have sent, so one eval run can score
    /// both replies side by side.
    pub owner_reply: Option<String>,
}

pub struct Assistant {
    /// When set, answers the policy assigns to generation are rewritten by the
    /// local LLM and verified; a reply that fails verification (or runs out of
    /// time) falls back to the owner's own text.
    pub writer: Option<generate::GroundedWriter>,
    /// Which answers are generated when a writer is loaded; without a writer
    /// every answer is the owner's text.
    pub policy: AnswerPolicy,
    pub index: Index,
    embedder: Arc<Embedder>,
    rules: EscalationRules,
    /// The business's hours in its time zone, for computed hours answers and
    /// the reply time in hand-overs; `None` without `[hours]`.
    schedule: Option<Schedule>,
    /// menu.toml's categories and tags, and the words the knowledge uses, for
    /// product questions ([`catalog`]).
    catalog: catalog::Catalog,
    pub calibration: Calibration,
}

/// Weight of normalised BM25 in the confidence evidence (the ranking has its own).
const EVIDENCE_LEXICAL_WEIGHT: f32 = 0.1;

fn content_words(text: &str) -> usize {
    crate::text::content_words(text).len()
}

impl Assistant {
    pub fn new(index: Index, embedder: Arc<Embedder>) -> Self {
        let rules = EscalationRules::new(&index.knowledge.business.escalation);
        let schedule = Schedule::for_business(&index.knowledge.business);
        let catalog = catalog::Catalog::new(&index.knowledge);
        let calibration = Calibration::for_index(&index);
        Assistant {
            writer: None,
            policy: AnswerPolicy::default(),
            index,
            embedder,
            rules,
            schedule,
            catalog,
            calibration,
        }
    }

    /// The business's hours, when business.toml has them.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_ref()
    }

    /// The instant of a business-local `"YYYY-MM-DDTHH:MM:SS"` (`--now`, eval
    /// lines' `now`), in business.toml's time zone.
    pub fn local_time(&self, text: &str) -> Result<Timestamp, String> {
        let time_zone = jiff::tz::TimeZone::get(&self.index.knowledge.business.timezone)
            .map_err(|e| e.to_string())?;
        crate::knowledge::hours::parse_local_time(text, &time_zone)
    }

    /// The embedder this assistant queries with (a reload reuses it).
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Confidence in the first of `hits` (ranked entries): how close the
    /// message is to it, how clearly it stands out from the next entry, less
    /// the share of topic words the knowledge never uses.
    fn confidence(&self, hits: &[Hit], unknown_share: f32) -> f32 {
        let Some(hit) = hits.first() else { return 0.0 };
        let c = self.calibration;
        let evidence = hit.dense
            + EVIDENCE_LEXICAL_WEIGHT * hit.lexical
            + calibration::margin_evidence(hit.score, hits.get(1).map(|h| h.score))
            - c.unknown_word_penalty * unknown_share;
        ((evidence - c.zero) / (c.full - c.zero)).clamp(0.0, 1.0)
    }

    /// The texts to embed for a message: the whole message, each substantial
    /// sentence of a long one, and for a short follow-up the previous customer
    /// turn joined with it.
    fn prepare(&self, message: &str, history: &[Turn], now: Timestamp) -> Prepared {
        let expanded = crate::text::expand_shorthand(message);
        let mut variants = vec![expanded.clone()];
        let parts: Vec<String> = crate::text::sentences(&expanded)
            .into_iter()
            .map(String::from)
            .collect();
        let substantial: Vec<usize> = (0..parts.len())
            .filter(|&n| content_words(&parts[n]) >= 2)
            .collect();
        let (sentences, parts, substantial) = if substantial.len() >= 2 {
            let sentences: Vec<String> = substantial.iter().map(|&n| parts[n].clone()).collect();
            (sentences, parts, substantial)
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        variants.extend(sentences.iter().cloned());
        let previous = history
            .iter()
            .rev()
            .find(|t| t.from == Speaker::Customer)
            .map(|t| crate::text::expand_shorthand(&t.text));
        let follow_up = previous
            .filter(|_| content_words(&expanded) < 4)
            .map(|p| format!("{p} {expanded}"));
        if let Some(follow_up) = &follow_up {
            variants.push(follow_up.clone());
        }
        Prepared {
            message: message.to_string(),
            now,
            history: history.to_vec(),
            expanded,
            variants,
            sentences,
            parts,
            substantial,
            follow_up,
        }
    }

    /// The vectors of each message's variants, in `variants` order, all
    /// embedded in one batched pass. A message of several sentences is not
    /// embedded whole: each sentence is embedded on its own (they are
    /// variants too) and the message's vector is the mean over all of their
    /// tokens, so its tokens pass through the model once, not twice. (The
    /// other way round was tried: pooling the sentences from the whole
    /// message's pass. Each sentence then carries the others' context, and a
    /// part the knowledge does not cover no longer looks uncovered, so the
    /// message would be half answered.)
    fn embed_prepared(&self, prepared: &[Prepared]) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
        let texts: Vec<&str> = prepared.iter().flat_map(|p| p.texts_to_embed()).collect();
        let mut pooled = self.embedder.pool(&texts)?.into_iter();
        Ok(prepared
            .iter()
            .map(|p| {
                let own: Vec<Pooled> = pooled.by_ref().take(p.texts_to_embed().count()).collect();
                if p.parts.is_empty() {
                    return own.iter().map(Pooled::unit).collect();
                }
                let (parts, rest) = own.split_at(p.parts.len());
                let mut vectors = Vec::with_capacity(p.variants.len());
                vectors.push(Pooled::combined(parts));
                vectors.extend(p.substantial.iter().map(|&n| parts[n].unit()));
                vectors.extend(rest.iter().map(Pooled::unit));
                vectors
            })
            .collect())
    }

    /// One message's variant vectors, in `variants` order, in one unpadded
    /// batch (a short sentence costs its own tokens, not the message's).
    fn embed_one_prepared(&self, prepared: &Prepared) -> Result<Vec<Vec<f32>>, ModelError> {
        self.embed_prepared(std::slice::from_ref(prepared))
            .map(|mut all| all.pop().unwrap_or_default())
    }

    /// Decides and writes the reply for one message sent now.
    pub fn ask(
        &self,
        message: &str,
        channel: Channel,
        history: &[Turn],
    ) -> Result<Outcome, ModelError> {
        self.ask_at(message, channel, history, Timestamp::now())
    }

    /// Decides and writes the reply for one message sent at `now` (hours
    /// questions and hand-overs depend on it).
    pub fn ask_at(
        &self,
        message: &str,
        channel: Channel,
        history: &[Turn],
        now: Timestamp,
    ) -> Result<Outcome, ModelError> {
        let started = Instant::now();
        let prepared = self.prepare(message, history, now);
        let vectors = self.embed_one_prepared(&prepared)?;
        Ok(self.decide(channel, &prepared, &vectors, started, 0.0))
    }

    /// Many messages at once: every text is embedded in one batched pass (much
    /// faster per message), then each message is decided on its own. Each
    /// outcome's timings carry its share of the batched embedding time.
    pub fn ask_many(
        &self,
        messages: &[(&str, Channel, &[Turn])],
    ) -> Result<Vec<Outcome>, ModelError> {
        let now = Timestamp::now();
        let timed: Vec<(&str, Channel, &[Turn], Timestamp)> = messages
            .iter()
            .map(|&(message, channel, history)| (message, channel, history, now))
            .collect();
        self.ask_many_at(&timed)
    }

    /// [`Assistant::ask_many`] with each message's own sending time.
    pub fn ask_many_at(
        &self,
        messages: &[(&str, Channel, &[Turn], Timestamp)],
    ) -> Result<Vec<Outcome>, ModelError> {
        let embed_started = Instant::now();
        let prepared: Vec<Prepared> = messages
            .iter()
            .map(|(m, _, h, now)| self.prepare(m, h, *now))
            .collect();
        let vectors = self.embed_prepared(&prepared)?;
        let share_ms =
            embed_started.elapsed().as_secs_f64() * 1000.0 / messages.len().max(1) as f64;
        let mut outcomes = Vec::with_capacity(messages.len());
        for (((_, channel, _, _), prepared), own) in messages.iter().zip(&prepared).zip(&vectors) {
            outcomes.push(self.decide(*channel, prepared, own, Instant::now(), share_ms));
        }
        Ok(outcomes)
    }

    fn decide(
        &self,
        channel: Channel,
        prepared: &Prepared,
        vectors: &[Vec<f32>],
        started: Instant,
        extra_ms: f64,
    ) -> Outcome {
        let knowledge = &self.index.knowledge;
        let Prepared {
            expanded,
            sentences,
            follow_up,
            ..
        } = prepared;
        // Rank with the message's own variants; the follow-up only helps when the
        // message alone finds nothing good.
        // One scan of the index for all of the message's vectors.
        let scored = self.index.score_vectors(vectors);
        let own = &scored[..scored.len() - usize::from(follow_up.is_some())];
        let own: Vec<&crate::index::VectorScores> = own.iter().collect();
        // The whole message's BM25 serves its ranking and `message_match`.
        let lexical = self.index.lexical_scores(expanded);
        let mut hits = self.index.search_with(&lexical, &own, 10);
        // When the message has no other variant, its best entry by its own
        // vector is the first of these hits.
        let mut message_best = (own.len() == 1).then(|| hits.first().map_or(0.0, |h| h.dense));
        if let Some(follow_up) = follow_up {
            if self.confidence(&hits, 0.0) < self.calibration.answer_from {
                let all: Vec<&crate::index::VectorScores> = scored.iter().collect();
                hits = self.index.search_scored(follow_up, &all, 10);
            }
        }
        // A message asking two things: each sentence's own best entry. A question
        // sentence that nothing in the knowledge is about is a part the reply
        // would silently drop: it is kept so the message goes to a person instead.
        let mut answer_entries: Vec<usize> =
            hits.first().map(|h| vec![h.entry]).unwrap_or_default();
        let mut unanswered_part: Option<&str> = None;
        for (offset, sentence) in sentences.iter().enumerate() {
            let sentence_hits = self
                .index
                .search_scored(sentence, &[&scored[1 + offset]], 3);
            let best = sentence_hits.first();
            if let Some(best) = best {
                if self.confidence(&sentence_hits, 0.0) >= self.calibration.answer_from
                    && !answer_entries.contains(&best.entry)
                    && answer_entries.len() < 2
                {
                    answer_entries.push(best.entry);
                }
            }
            // Unanswered: a question about nothing in the knowledge (the same
            // calibrated floor as a whole out-of-scope message) whose own top
            // entries are not part of the answer either.
            let covered = sentence_hits
                .iter()
                .any(|h| answer_entries.contains(&h.entry));
            let about_nothing = self.confidence(&sentence_hits, self.index.unknown_share(sentence))
                < self.calibration.out_of_scope_below;
            if about_nothing && !covered && unanswered_part.is_none() && asks_something(sentence) {
                unanswered_part = Some(sentence.as_str());
            }
        }
        // "Is the carrot cake nut free?": the item's own allergens, then the
        // kitchen's allergen policy when retrieval found one for the message.
        if answer_entries.len() == 1
            && knowledge.entries[answer_entries[0]].kind == EntryKind::MenuItem
            && asks_about_allergens(expanded)
        {
            let policy = hits.iter().map(|h| h.entry).find(|&e| {
                let entry = &knowledge.entries[e];
                entry.kind != EntryKind::MenuItem && about_allergens(entry)
            });
            answer_entries.extend(policy);
        } else if answer_entries.len() == 1
            && about_allergens(&knowledge.entries[answer_entries[0]])
            && asks_about_allergens(expanded)
        {
            // The policy came first, but the message names a menu item: its
            // allergens lead ("is the carrot cake nut free?").
            let named = hits.iter().map(|h| h.entry).find(|&e| {
                let entry = &knowledge.entries[e];
                entry.kind == EntryKind::MenuItem
                    && entry.phrasings.iter().any(|p| names(expanded, p))
            });
            if let Some(item) = named {
                answer_entries.insert(0, item);
            }
        }
        let retrieve_ms = started.elapsed().as_secs_f64() * 1000.0 + extra_ms;

        let top = hits.first();
        let unknown_share = self.index.unknown_share(expanded);
        let confidence = self.confidence(&hits, unknown_share);
        let mut sources: Vec<SourceId> = answer_entries
            .iter()
            .map(|&e| knowledge.entries[e].source.clone())
            .collect();
        for hit in &hits {
            let source = &knowledge.entries[hit.entry].source;
            if !sources.contains(source) && sources.len() < 5 {
                sources.push(source.clone());
            }
        }

        let rule = self.escalating_rule(expanded, top, confidence);

        // "Do you sell bread?": a category or tag of the menu is listed from
        // menu.toml; a product the knowledge never names is out of scope.
        let product = if rule.is_none() {
            self.product_answer(expanded, sentences, top.map(|t| t.entry))
        } else {
            None
        };

        // "Are you open now?" and its kind: computed from the hours at the
        // message's time. Not when a rule escalates, nor when the message is
        // about nothing the knowledge covers ("is the post office open today?").
        let computed = if rule.is_none()
            && product.is_none()
            && confidence >= self.calibration.out_of_scope_below
        {
            self.computed_hours(prepared)
        } else {
            None
        };
        if computed.is_some() && unanswered_part.is_some_and(hours::about_opening) {
            unanswered_part = None;
        }

        let (action, reason, explanation) = if let Some(rule) = &rule {
            (
                Action::Escalate,
                Some(rule.reason),
                format!("rule {} on \"{}\"", rule.reason, rule.trigger),
            )
        } else if let Some(product) = &product {
            match product {
                ProductAnswer::Listing(listing) => (
                    Action::Answer,
                    None,
                    format!("menu listing of {} items", listing.entries.len()),
                ),
                ProductAnswer::NotCovered(name) => (
                    Action::Escalate,
                    Some(Reason::OutOfScope),
                    format!("asks for \"{name}\", which the knowledge never names"),
                ),
            }
        } else if let Some(computed) = &computed {
            let read = format!(
                "computed hours ({:?}) at {}",
                computed.question,
                self.schedule
                    .as_ref()
                    .map(|s| s.local(prepared.now).to_string())
                    .unwrap_or_default()
            );
            match unanswered_part {
                Some(part) => (
                    Action::Escalate,
                    Some(Reason::LowConfidence),
                    format!("part not answered: \"{part}\"; {read}"),
                ),
                None => (Action::Answer, None, read),
            }
        } else {
            let evidence = top
                .map(|t| {
                    format!(
                        "top {} score {:.3} dense {:.3} lexical {:.2} unknown words {:.2}",
                        knowledge.entries[t.entry].source,
                        t.score,
                        t.dense,
                        t.lexical,
                        unknown_share
                    )
                })
                .unwrap_or_else(|| "no entries".into());
            // One topic word and no context is vague ("cake?"), unless the
            // message asks for it as a product ("do u have funfetti").
            let vague = content_words(expanded) < 2
                && follow_up.is_none()
                && catalog::read_ask(expanded).is_none();
            if confidence < self.calibration.out_of_scope_below {
                (Action::Escalate, Some(Reason::OutOfScope), evidence)
            } else if confidence < self.calibration.answer_from || (vague && confidence < 0.9) {
                (Action::Escalate, Some(Reason::LowConfidence), evidence)
            } else if let Some(part) = unanswered_part {
                (
                    Action::Escalate,
                    Some(Reason::LowConfidence),
                    format!("part not answered: \"{part}\"; {evidence}"),
                )
            } else {
                (Action::Answer, None, evidence)
            }
        };

        let mut generate_ms = 0.0;
        let mut reply_detail = ReplyDetail::default();
        let mut confidence = confidence;
        let computed_reply = match (&computed, action) {
            (Some(computed), Action::Answer) => {
                confidence = confidence.max(COMPUTED_HOURS_CONFIDENCE);
                Some(self.computed_reply(
                    computed,
                    &answer_entries,
                    &mut sources,
                    &mut reply_detail,
                    channel,
                ))
            }
            _ => None,
        };
        let listing_reply = match (&product, action) {
            (Some(ProductAnswer::Listing(listing)), Action::Answer) => {
                confidence = confidence.max(MENU_LISTING_CONFIDENCE);
                Some(self.listing_reply(listing, &mut sources, &mut reply_detail, channel))
            }
            _ => None,
        };
        let reply = match action {
            Action::Answer if computed_reply.is_some() => computed_reply.unwrap_or_default(),
            Action::Answer if listing_reply.is_some() => listing_reply.unwrap_or_default(),
            Action::Answer => {
                let entries: Vec<&crate::knowledge::Entry> = answer_entries
                    .iter()
                    .map(|&e| &knowledge.entries[e])
                    .collect();
                let owner_reply = reply::fit_to_channel(
                    &reply::extractive(&entries),
                    channel,
                    &knowledge.business.name,
                );
                reply_detail.kinds = entries.iter().map(|e| e.kind).collect();
                let chosen = self.policy.choose(&reply_detail.kinds);
                reply_detail.chosen = Some(chosen);
                let writer = self
                    .writer
                    .as_ref()
                    .filter(|_| chosen == ReplySource::Generate);
                let generated = writer.and_then(|writer| {
                    let passages: Vec<&str> = entries.iter().map(|e| e.answer.as_str()).collect();
                    match writer.write(
                        &knowledge.business.name,
                        channel,
                        &passages,
                        &prepared.history,
                        &prepared.message,
                    ) {
                        Ok((text, report)) => {
                            generate_ms = report.generate_ms;
                            if text.is_none() {
                                let rejected: Vec<String> =
                                    report.rejected.iter().map(ToString::to_string).collect();
                                tracing::info!(
                                    ?rejected,
                                    out_of_time = report.out_of_time,
                                    "generated reply not sent; sending the owner's text"
                                );
                            }
                            reply_detail.generation = Some(report);
                            text
                        }
                        Err(error) => {
                            tracing::warn!(%error, "generation failed; sending the owner's text");
                            None
                        }
                    }
                });
                reply_detail.generated = generated.is_some();
                let sent = match generated {
                    Some(text) => reply::fit_to_channel(&text, channel, &knowledge.business.name),
                    None => owner_reply.clone(),
                };
                reply_detail.owner_reply = Some(owner_reply);
                sent
            }
            Action::Escalate | Action::Collect => reply::fit_to_channel(
                &hours::handover_message(
                    &knowledge.business.escalation,
                    self.schedule.as_ref(),
                    prepared.now,
                ),
                channel,
                &knowledge.business.name,
            ),
        };
        let total = started.elapsed().as_secs_f64() * 1000.0 + extra_ms;
        Outcome {
            decision: Decision {
                action,
                reason,
                confidence,
                sources,
            },
            reply,
            timings: Timings {
                retrieve: retrieve_ms,
                generate: generate_ms,
                total,
            },
            explanation,
            top_scores: [
                hits.first().map_or(0.0, |h| h.score),
                hits.get(1).map_or(0.0, |h| h.score),
            ],
            reply_detail,
            form: None,
            // The whole message's own scores are the first of the scan above:
            // no second pass over the index.
            message_match: vectors.first().zip(scored.first()).map(|(vector, scores)| {
                let best = message_best.take().unwrap_or_else(|| {
                    self.index
                        .search_with(&lexical, &[scores], 1)
                        .first()
                        .map_or(0.0, |hit| hit.dense)
                });
                (vector.clone(), best)
            }),
        }
    }
}

/// A message turned into the texts to embed.
struct Prepared {
    message: String,
    /// When the message was sent.
    now: Timestamp,
    history: Vec<Turn>,
    expanded: String,
    variants: Vec<String>,
    sentences: Vec<String>,
    /// Every sentence of a message of several (empty otherwise): embedded
    /// instead of the whole message, whose vector is pooled from theirs.
    parts: Vec<String>,
    /// Which of `parts` are `sentences`.
    substantial: Vec<usize>,
    follow_up: Option<String>,
}

impl Prepared {
    /// What goes through the model: the parts and whatever variants are not
    /// made of them, or else every variant.
    fn texts_to_embed(&self) -> impl Iterator<Item = &str> {
        let skip = if self.parts.is_empty() {
            0
        } else {
            1 + self.sentences.len()
        };
        self.parts
            .iter()
            .chain(self.variants.iter().skip(skip))
            .map(String::as_str)
    }
}
