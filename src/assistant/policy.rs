//! The answer policy: for each kind of source (and for answers that join two
//! entries), whether the customer is sent the owner's own text or a reply the
//! local LLM wrote from it. Pure data and one choice function; it never runs a
//! model. The writer is only consulted where the policy says `Generate`, so with
//! the default policy most answers skip the LLM entirely (fast and exact).

use crate::knowledge::EntryKind;

/// Where one answer's text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplySource {
    /// The owner's answer text, fitted to the channel.
    OwnerText,
    /// A reply written by the local LLM and verified; the owner's text if it fails.
    Generate,
}

/// The policies `ask`/`eval --policy` can run, so that "owner text for
/// everything", "generate for everything" and the measured policy can be
/// compared on the same question file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyName {
    /// Never generate (what runs when no writer is loaded).
    Owner,
    /// Generate every answer (the comparison baseline).
    Always,
    /// [`AnswerPolicy::measured`].
    #[default]
    Measured,
}

impl std::str::FromStr for PolicyName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "owner" => Ok(PolicyName::Owner),
            "always" => Ok(PolicyName::Always),
            "measured" => Ok(PolicyName::Measured),
            other => Err(format!(
                "unknown policy {other:?} (expected owner, always or measured)"
            )),
        }
    }
}

impl std::fmt::Display for PolicyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PolicyName::Owner => "owner",
            PolicyName::Always => "always",
            PolicyName::Measured => "measured",
        })
    }
}

/// The reply source per kind of the answer's entry; an answer built from two
/// entries (a message asking two things) uses `joined` whatever their kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerPolicy {
    pub faq: ReplySource,
    pub menu_item: ReplySource,
    pub section: ReplySource,
    pub business: ReplySource,
    pub joined: ReplySource,
}

impl AnswerPolicy {
    /// The same source for everything.
    pub const fn uniform(source: ReplySource) -> Self {
        AnswerPolicy {
            faq: source,
            menu_item: source,
            section: source,
            business: source,
            joined: source,
        }
    }

    /// The default, chosen per source kind from `eval --generate --policy always`
    /// on the full eval/bakery.jsonl and eval/bike-shop.jsonl sets, which scores
    /// the generated reply and the owner's text of every answer side by side
    /// (BENCHMARKS.md, "Generation policy"). With SmolLM2-135M, 10 of 355
    /// generated answers passed the verifier, mentions ok was the same as the
    /// owner's text for every kind and for joined answers, and each generated
    /// answer cost ~3.4 s instead of ~20 ms; so the owner's text is sent
    /// everywhere. Re-measure and flip a field when the model or decoder changes.
    pub const fn measured() -> Self {
        AnswerPolicy::uniform(ReplySource::OwnerText)
    }

    pub const fn named(name: PolicyName) -> Self {
        match name {
            PolicyName::Owner => AnswerPolicy::uniform(ReplySource::OwnerText),
            PolicyName::Always => AnswerPolicy::uniform(ReplySource::Generate),
            PolicyName::Measured => AnswerPolicy::measured(),
        }
    }

    /// The source for an answer built from entries of these kinds, in order.
    pub fn choose(&self, kinds: &[EntryKind]) -> ReplySource {
        match kinds {
            [] => ReplySource::OwnerText,
            [kind] => self.for_kind(*kind),
            _ => self.joined,
        }
    }

    pub fn for_kind(&self, kind: EntryKind) -> ReplySource {
        match kind {
            EntryKind::Faq => self.faq,
            EntryKind::MenuItem => self.menu_item,
            EntryKind::Section => self.section,
            EntryKind::Business => self.business,
        }
    }
}

impl Default for AnswerPolicy {
    fn default() -> Self {
        AnswerPolicy::measured()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: AnswerPolicy = AnswerPolicy {
        faq: ReplySource::OwnerText,
        menu_item: ReplySource::Generate,
        section: ReplySource::OwnerText,
        business: ReplySource::OwnerText,
        joined: ReplySource::Generate,
    };

    #[test]
    fn a_single_entry_answer_follows_its_kind() {
        assert_eq!(MIXED.choose(&[EntryKind::Faq]), ReplySource::OwnerText);
        assert_eq!(MIXED.choose(&[EntryKind::MenuItem]), ReplySource::Generate);
        assert_eq!(MIXED.choose(&[EntryKind::Business]), ReplySource::OwnerText);
    }

    #[test]
    fn a_two_entry_answer_follows_joined_whatever_the_kinds() {
        assert_eq!(
            MIXED.choose(&[EntryKind::Faq, EntryKind::Section]),
            ReplySource::Generate
        );
        let owner_joined = AnswerPolicy {
            joined: ReplySource::OwnerText,
            ..MIXED
        };
        assert_eq!(
            owner_joined.choose(&[EntryKind::MenuItem, EntryKind::MenuItem]),
            ReplySource::OwnerText
        );
    }

    #[test]
    fn no_entries_means_owner_text_and_named_policies_are_uniform() {
        assert_eq!(
            AnswerPolicy::named(PolicyName::Always).choose(&[]),
            ReplySource::OwnerText
        );
        for kind in [
            EntryKind::Faq,
            EntryKind::MenuItem,
            EntryKind::Section,
            EntryKind::Business,
        ] {
            assert_eq!(
                AnswerPolicy::named(PolicyName::Always).for_kind(kind),
                ReplySource::Generate
            );
            assert_eq!(
                AnswerPolicy::named(PolicyName::Owner).for_kind(kind),
                ReplySource::OwnerText
            );
        }
        assert_eq!(AnswerPolicy::default(), AnswerPolicy::measured());
        assert_eq!("always".parse::<PolicyName>(), Ok(PolicyName::Always));
        assert!("sometimes".parse::<PolicyName>().is_err());
    }
}
