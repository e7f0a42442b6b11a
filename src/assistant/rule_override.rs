//! The rule override in `decide`: a rule escalation (sensitive, complaint,
//! person, big order) stands unless the owner's knowledge anticipates this
//! exact kind of message, with a close phrasing holding the trigger words.

use super::rules::RuleMatch;
use super::Assistant;
use crate::index::Hit;

impl Assistant {
    /// The rule that escalates the (expanded) message, unless `top`, the best
    /// entry at `confidence`, shows the owner answers this kind of message.
    pub(super) fn escalating_rule(
        &self,
        expanded: &str,
        top: Option<&Hit>,
        confidence: f32,
    ) -> Option<RuleMatch> {
        let knowledge = &self.index.knowledge;
        self.rules.check(expanded).filter(|rule| {
            // The owner's knowledge anticipates this exact kind of message.
            let covered = top.is_some_and(|t| {
                let phrasings = &knowledge.entries[t.entry].phrasings;
                let close = t.dense >= self.calibration.override_similarity
                    && phrasings
                        .iter()
                        .any(|p| p.to_lowercase().contains(&rule.trigger));
                // A context-dependent word the confident best entry's own
                // phrasings use, in any form ("bleeding" / "my gums bleed").
                let anticipated = rule.depends_on_context()
                    && confidence >= self.calibration.answer_from
                    && phrasings.iter().any(|p| uses_stem_of(p, &rule.trigger));
                close || anticipated
            });
            !covered
        })
    }
}

/// Whether `phrasing` holds every word of `trigger` in some form: the same
/// stem, or one word the start of the other ("bleed" / "bleeding").
fn uses_stem_of(phrasing: &str, trigger: &str) -> bool {
    let words = crate::text::words(phrasing);
    let same = |a: &str, b: &str| {
        crate::text::stem(a) == crate::text::stem(b)
            || (a.len().min(b.len()) >= 4 && (a.starts_with(b) || b.starts_with(a)))
    };
    crate::text::words(trigger)
        .iter()
        .all(|t| words.iter().any(|w| same(w, t)))
}
