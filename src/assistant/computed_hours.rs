//! The computed hours answer in `decide`: "are you open now?"-style
//! questions answered from the hours at the message's time (only sentences
//! the cited entries support), and the reply that joins it with the answer to
//! any other question the message asks.

use super::policy::ReplySource;
use super::{grounding, hours, reply, Assistant, Prepared, ReplyDetail};
use crate::domain::{Channel, SourceId};
use crate::knowledge::EntryKind;

/// Confidence reported for a computed hours answer: it rests on reading the
/// question, not on retrieval similarity.
pub(super) const COMPUTED_HOURS_CONFIDENCE: f32 = 0.9;

/// An hours answer computed for a message, with the sources it states.
pub(super) struct ComputedHours {
    text: String,
    sources: Vec<SourceId>,
    pub(super) question: hours::HoursQuestion,
}

impl Assistant {
    /// The computed hours answer when the message asks about being open at a
    /// time, keeping only sentences whose facts the cited entries state (the
    /// first must pass, or retrieval answers as before).
    pub(super) fn computed_hours(&self, prepared: &Prepared) -> Option<ComputedHours> {
        let schedule = self.schedule.as_ref()?;
        let knowledge = &self.index.knowledge;
        let question = hours::read_for(
            &prepared.expanded,
            schedule.local(prepared.now),
            schedule,
            &knowledge.business.name,
        )?;
        if hours::unsettled(&question, schedule) {
            return None;
        }
        let answer = hours::answer(&question, schedule, prepared.now);
        let passages: Vec<&str> = answer
            .sources
            .iter()
            .map(|source| knowledge.entry(source).map(|e| e.answer.as_str()))
            .collect::<Option<_>>()?;
        let mut kept = Vec::new();
        for (index, sentence) in answer.sentences.iter().enumerate() {
            let supported = grounding::unsupported_facts(sentence, &passages).is_empty();
            if !supported && index == 0 {
                tracing::warn!(%sentence, "computed hours answer not grounded; answering from retrieval");
                return None;
            }
            if supported {
                kept.push(sentence.as_str());
            }
        }
        if kept.is_empty() {
            return None;
        }
        Some(ComputedHours {
            text: kept.join(" "),
            sources: answer.sources,
            question,
        })
    }
}

impl Assistant {
    /// The reply for a computed hours answer: its sentences first, then the
    /// answer to any other question the message asks (never another hours
    /// entry); its sources lead the decision's sources.
    pub(super) fn computed_reply(
        &self,
        computed: &ComputedHours,
        answer_entries: &[usize],
        sources: &mut Vec<SourceId>,
        reply_detail: &mut ReplyDetail,
        channel: Channel,
    ) -> String {
        let knowledge = &self.index.knowledge;
        let other = answer_entries
            .iter()
            .map(|&e| &knowledge.entries[e])
            .find(|e| !hours_entry(e));
        let mut text = computed.text.clone();
        let mut answer_sources = computed.sources.clone();
        reply_detail.kinds = vec![EntryKind::Business];
        if let Some(other) = other {
            text = format!("{text}\n\n{}", other.answer.trim());
            answer_sources.push(other.source.clone());
            reply_detail.kinds.push(other.kind);
        }
        for source in sources.drain(..) {
            if !answer_sources.contains(&source) && answer_sources.len() < 5 {
                answer_sources.push(source);
            }
        }
        *sources = answer_sources;
        reply_detail.chosen = Some(ReplySource::OwnerText);
        let sent = reply::fit_to_channel(&text, channel, &knowledge.business.name);
        reply_detail.owner_reply = Some(sent.clone());
        sent
    }
}

/// An entry about opening hours (business.toml's hours and closures, or an
/// FAQ entry or section titled like "What are your opening hours?"): the
/// computed answer replaces it rather than being joined with it.
fn hours_entry(entry: &crate::knowledge::Entry) -> bool {
    matches!(
        entry.source.as_str(),
        "business.toml#hours" | "business.toml#closures"
    ) || hours::about_opening(&entry.title)
}
