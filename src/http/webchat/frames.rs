//! The socket protocol's frames: what the server sends ([`ServerFrame`], with
//! the [`Author`] of a message) and what the browser sends (`ClientFrame`,
//! with a signed-in user's `UserClaim`).

use crate::store::StoredMessage;
use serde::{Deserialize, Serialize};

/// Who wrote a message, as the widget shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    Assistant,
    Human,
    Customer,
}

impl Author {
    pub(super) fn of(stored: &StoredMessage) -> Author {
        match stored.author.as_str() {
            "customer" => Author::Customer,
            "human" => Author::Human,
            _ => Author::Assistant,
        }
    }
}

/// What the server sends on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Message {
        id: String,
        from: Author,
        text: String,
        at: i64,
    },
    Ack {
        client_id: String,
        id: String,
    },
    Ready {
        replayed: usize,
    },
    Error {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl ServerFrame {
    pub(super) fn from_stored(stored: &StoredMessage) -> ServerFrame {
        ServerFrame::Message {
            id: stored.id.clone(),
            from: Author::of(stored),
            text: stored.text.clone(),
            at: stored.created_ms,
        }
    }

    pub(super) fn error(
        code: &str,
        message: impl Into<String>,
        client_id: Option<&str>,
    ) -> ServerFrame {
        ServerFrame::Error {
            code: code.into(),
            message: message.into(),
            client_id: client_id.map(str::to_string),
        }
    }
}

/// What the browser sends on the socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ClientFrame {
    Hello {
        visitor: String,
        #[serde(default)]
        last_seen: Option<String>,
        #[serde(default)]
        user: Option<UserClaim>,
    },
    Message {
        client_id: String,
        text: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub(in crate::http) struct UserClaim {
    pub(in crate::http) id: String,
    pub(in crate::http) signature: String,
}
