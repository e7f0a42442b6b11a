//! Plain types shared by every step: channels, decisions, reasons and source ids.
//!
//! Nothing here does I/O or knows about models, indexes or HTTP; these are the
//! words the rest of the crate speaks.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a customer's message came from (and where the reply goes back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Whatsapp,
    Instagram,
    Messenger,
    Sms,
    #[default]
    Webchat,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Whatsapp,
        Channel::Instagram,
        Channel::Messenger,
        Channel::Sms,
        Channel::Webchat,
        Channel::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Instagram => "instagram",
            Channel::Messenger => "messenger",
            Channel::Sms => "sms",
            Channel::Webchat => "webchat",
            Channel::Email => "email",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown channel `{s}` (expected whatsapp, instagram, messenger, sms, webchat or email)")
            })
    }
}

/// What the assistant does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Answer,
    Escalate,
    /// A form is in progress: the reply asks for more details or for the
    /// confirmation (FORMATS.md §7).
    Collect,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Answer => "answer",
            Action::Escalate => "escalate",
            Action::Collect => "collect",
        }
    }
}

/// Why a message goes to a human. The names are fixed by FORMATS.md §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    OutOfScope,
    LowConfidence,
    HumanRequested,
    Complaint,
    HighValue,
    Sensitive,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::OutOfScope,
        Reason::LowConfidence,
        Reason::HumanRequested,
        Reason::Complaint,
        Reason::HighValue,
        Reason::Sensitive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OutOfScope => "out_of_scope",
            Reason::LowConfidence => "low_confidence",
            Reason::HumanRequested => "human_requested",
            Reason::Complaint => "complaint",
            Reason::HighValue => "high_value",
            Reason::Sensitive => "sensitive",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of one retrievable passage: `faq.md#do-you-deliver`, `menu.toml#red-velvet-cake`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceId(pub String);

impl SourceId {
    pub fn new(file: &str, slug: &str) -> Self {
        SourceId(format!("{file}#{slug}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who wrote one earlier turn of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Customer,
    Assistant,
}

/// One earlier turn of the same conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub from: Speaker,
    pub text: String,
}

/// The assistant's verdict on one message, before any reply text is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: Action,
    pub reason: Option<Reason>,
    /// How sure retrieval is that the top source answers the message, in [0, 1].
    pub confidence: f32,
    /// Ranked sources, best first (the ones a reply is grounded in).
    pub sources: Vec<SourceId>,
}
