//! The web chat channel, served by frontdesk itself: the widget's files
//! (`/widget.js`, `/chat/app.js`, `/chat/app.css`) and its WebSocket
//! (`/chat/socket`), plus the [`ChatHub`] that pushes replies to open sockets.
//!
//! A visitor's message takes the same road as a webhook: validated here,
//! persisted through [`Store::ingest`](crate::store::Store::ingest) *before*
//! the `ack` frame, then answered by the pipeline workers. The reply lands in
//! the outbox like any other; the delivery worker hands it to [`push_reply`],
//! which pushes it to the visitor's open sockets. The socket never answers a
//! message itself, and nothing here knows SQL.
//!
//! The protocol (JSON text frames; binary frames close the socket):
//!
//! ```text
//! client → {"type":"hello","visitor":"<token>","last_seen":"<message id>"|null,
//!           "user":{"id":"..","signature":"<hex HMAC-SHA256(id, secret)>"}?}
//! client → {"type":"message","client_id":"<uuid>","text":".."}
//! server → {"type":"message","id":"..","from":"assistant"|"human"|"customer","text":"..","at":<ms>}
//! server → {"type":"ack","client_id":"..","id":"<stored message id>"}
//! server → {"type":"ready","replayed":<n>}            after the replay that follows a hello
//! server → {"type":"error","code":"..","message":"..","client_id":".."?}
//! ```
//!
//! The visitor token is a random bearer secret kept in the browser's
//! localStorage and sent only inside the socket (never in a URL, so it stays
//! out of access logs). It is not stored either: the contact's address is a
//! hash of it, so a leaked database does not let anyone read a visitor's chat.
//! A resent `client_id` is acknowledged with the id of the first copy and not
//! answered again. Every hello replays what the visitor has not seen yet, so a
//! reply pushed while the tab was offline is never lost.
//!
//! Here: the settings, the widget's files and the delivery worker's push.
//! `frames.rs` is the protocol's frames, `hub.rs` the [`ChatHub`],
//! `identity.rs` the hello check (visitor token, signed-in user's HMAC) and
//! `socket.rs` one socket's life; the photo upload is `http::webchat_upload`.

mod frames;
mod hub;
mod identity;
#[cfg(test)]
mod proptests;
mod socket;
#[cfg(test)]
mod tests;

pub(super) use frames::UserClaim;
pub use frames::{Author, ServerFrame};
pub use hub::ChatHub;
pub use identity::identity_signature;
pub(super) use identity::{accept_hello, is_token};

use super::AppState;
use crate::channels::{OutboundMessage, SendError};
use crate::config::Secret;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::time::Duration;

/// The longest message a visitor may send, in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// The biggest frame the socket reads; bigger ones close it unread. Room for
/// 2,000 characters of 4-byte UTF-8 plus the JSON around them.
const MAX_FRAME_BYTES: usize = 16 * 1024;
/// A socket that has not said hello by then is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings (keeps proxies from cutting quiet sockets).
const PING_EVERY: Duration = Duration::from_secs(25);
/// A socket we have heard nothing from (not even a pong) for this long is dead.
const DEAD_AFTER: Duration = Duration::from_secs(70);
/// A socket whose visitor has sent nothing for this long is closed with
/// reason `idle`; the widget reconnects (and replays) when the visitor is back.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// At most this many messages are replayed after a hello.
const REPLAY_LIMIT: i64 = 200;
/// Open sockets per visitor (tabs); the oldest is dropped beyond this.
const MAX_SOCKETS_PER_VISITOR: usize = 8;
/// Frames waiting for one socket; a socket this far behind is dropped and
/// catches up by replay when it reconnects.
const SOCKET_BUFFER: usize = 64;
/// Web chat has one inbox: the business_account of every web chat conversation.
pub const BUSINESS_ACCOUNT: &str = "webchat";

const WIDGET_JS: &str = include_str!("../../../assets/widget.js");
const APP_JS: &str = include_str!("../../../assets/chat/app.js");
const APP_CSS: &str = include_str!("../../../assets/chat/app.css");
/// The loader names the chat files with this version so they can be cached for good.
const VERSION_PLACEHOLDER: &str = "__FRONTDESK_CHAT_VERSION__";

/// Web chat settings. Read from the environment until `config.rs` grows a
/// `[webchat]` section (the names already follow FRONTDESK_<SECTION>_<KEY>).
#[derive(Debug, Clone, Default)]
pub struct WebchatConfig {
    /// `FRONTDESK_WEBCHAT_IDENTITY_SECRET`: when set, a hello that names a
    /// signed-in user must carry hex HMAC-SHA256(user id, secret), computed by
    /// the shop's own backend, or it is refused.
    pub identity_secret: Option<Secret>,
    /// `FRONTDESK_WEBCHAT_ALLOWED_ORIGINS` (comma-separated, e.g.
    /// `https://shop.example`): when set, sockets from other pages are refused.
    /// Empty: any site may embed the widget.
    pub allowed_origins: Vec<String>,
}

impl WebchatConfig {
    pub fn from_env() -> WebchatConfig {
        let identity_secret = std::env::var("FRONTDESK_WEBCHAT_IDENTITY_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        let allowed_origins = std::env::var("FRONTDESK_WEBCHAT_ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(|origin| origin.trim().trim_end_matches('/').to_string())
            .filter(|origin| !origin.is_empty())
            .collect();
        WebchatConfig {
            identity_secret,
            allowed_origins,
        }
    }

    pub(super) fn origin_allowed(&self, origin: Option<&str>) -> bool {
        self.allowed_origins.is_empty()
            || origin.is_some_and(|origin| self.allowed_origins.iter().any(|o| o == origin))
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(widget_js))
        .route("/chat/app.js", get(app_js))
        .route("/chat/app.css", get(app_css))
        .route("/chat/socket", get(socket::socket))
}

fn asset(content_type: &'static str, cache: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // Shops embed these from another origin, some with COEP on.
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("cross-origin"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn widget_js(State(state): State<AppState>) -> Response {
    // The URL shops paste never changes, so the loader is cached briefly and
    // names the current chat files by version.
    asset(
        "text/javascript; charset=utf-8",
        "public, max-age=300",
        state.chat_hub.widget_js.clone(),
    )
}

/// Versioned URLs are immutable; any other is served fresh each time.
fn chat_file_cache(state: &AppState, query: &HashMap<String, String>) -> &'static str {
    if query.get("v") == Some(&state.chat_hub.asset_version) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

async fn app_js(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let cache = chat_file_cache(&state, &query);
    asset("text/javascript; charset=utf-8", cache, APP_JS.to_string())
}

async fn app_css(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let cache = chat_file_cache(&state, &query);
    asset("text/css; charset=utf-8", cache, APP_CSS.to_string())
}

/// The delivery worker's web chat send: pushes a stored reply to the
/// visitor's open sockets and returns the reply's message id as the
/// provider id.
///
/// A visitor with no socket open is not a failure: the reply is already in
/// the conversation's history and the next hello replays it, so the outbox
/// row is marked sent either way (retrying would only push it twice).
pub async fn push_reply(state: &AppState, message: &OutboundMessage) -> Result<String, SendError> {
    let stored = state
        .store
        .outbox_message(&message.idempotency_key)
        .await
        .map_err(|error| SendError::new(true, error.to_string()))?
        .ok_or_else(|| {
            SendError::permanent(format!("no stored reply for {}", message.idempotency_key))
        })?;
    let sockets = state
        .chat_hub
        .push(&message.to, &ServerFrame::from_stored(&stored));
    tracing::debug!(sockets, "web chat reply pushed");
    Ok(stored.id)
}
