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

use super::AppState;
use crate::channels::{InboundMessage, OutboundMessage, SendError};
use crate::config::Secret;
use crate::domain::Channel;
use crate::store::{now_ms, Ingested, StoredMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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

const WIDGET_JS: &str = include_str!("../../assets/widget.js");
const APP_JS: &str = include_str!("../../assets/chat/app.js");
const APP_CSS: &str = include_str!("../../assets/chat/app.css");
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

/// Who wrote a message, as the widget shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    Assistant,
    Human,
    Customer,
}

impl Author {
    fn of(stored: &StoredMessage) -> Author {
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
    fn from_stored(stored: &StoredMessage) -> ServerFrame {
        ServerFrame::Message {
            id: stored.id.clone(),
            from: Author::of(stored),
            text: stored.text.clone(),
            at: stored.created_ms,
        }
    }

    fn error(code: &str, message: impl Into<String>, client_id: Option<&str>) -> ServerFrame {
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
enum ClientFrame {
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
pub(super) struct UserClaim {
    pub(super) id: String,
    pub(super) signature: String,
}

/// Each open socket of one contact: its id in the hub and the way to reach it.
type Sockets = Vec<(u64, mpsc::Sender<ServerFrame>)>;

/// The open sockets, by contact address, so the delivery worker can push a
/// reply to every tab the visitor has open. Also holds the web chat settings
/// and the widget's files with their version stamped in.
pub struct ChatHub {
    pub(super) config: WebchatConfig,
    sockets: Mutex<HashMap<String, Sockets>>,
    next_socket: AtomicU64,
    /// The loader with the chat files' version filled in.
    widget_js: String,
    /// A hash of app.js and app.css: their URLs change when they do.
    asset_version: String,
}

impl ChatHub {
    pub fn new(config: WebchatConfig) -> ChatHub {
        let digest = Sha256::new()
            .chain_update(APP_JS)
            .chain_update(APP_CSS)
            .finalize();
        let asset_version = hex::encode(&digest[..6]);
        ChatHub {
            config,
            sockets: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(1),
            widget_js: WIDGET_JS.replace(VERSION_PLACEHOLDER, &asset_version),
            asset_version,
        }
    }

    /// Sends `frame` to every open socket of `address`; returns how many took it.
    pub fn push(&self, address: &str, frame: &ServerFrame) -> usize {
        self.push_except(address, 0, frame)
    }

    /// How many sockets `address` has open.
    pub fn online(&self, address: &str) -> usize {
        self.lock().get(address).map_or(0, Vec::len)
    }

    fn push_except(&self, address: &str, except: u64, frame: &ServerFrame) -> usize {
        let mut sockets = self.lock();
        let Some(senders) = sockets.get_mut(address) else {
            return 0;
        };
        let mut delivered = 0;
        // A socket that is full or gone is dropped from the hub: its task sees
        // the channel close, closes the socket, and the widget reconnects and replays.
        senders.retain(|(id, sender)| {
            if *id == except {
                return true;
            }
            let taken = sender.try_send(frame.clone()).is_ok();
            delivered += usize::from(taken);
            taken
        });
        if senders.is_empty() {
            sockets.remove(address);
        }
        delivered
    }

    fn subscribe(self: &Arc<Self>, address: &str) -> Subscription {
        let id = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let (sender, frames) = mpsc::channel(SOCKET_BUFFER);
        let mut sockets = self.lock();
        let senders = sockets.entry(address.to_string()).or_default();
        if senders.len() >= MAX_SOCKETS_PER_VISITOR {
            senders.remove(0);
        }
        senders.push((id, sender));
        Subscription {
            hub: Arc::clone(self),
            address: address.to_string(),
            id,
            frames,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sockets>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One socket's place in the hub; leaving it (drop) removes the socket.
struct Subscription {
    hub: Arc<ChatHub>,
    address: String,
    id: u64,
    frames: mpsc::Receiver<ServerFrame>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut sockets = self.hub.lock();
        if let Some(senders) = sockets.get_mut(&self.address) {
            senders.retain(|(id, _)| *id != self.id);
            if senders.is_empty() {
                sockets.remove(&self.address);
            }
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(widget_js))
        .route("/chat/app.js", get(app_js))
        .route("/chat/app.css", get(app_css))
        .route("/chat/socket", get(socket))
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

async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !state.chat_hub.config.origin_allowed(origin) {
        tracing::warn!(origin, "web chat socket from an origin that is not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| run_socket(state, socket))
}

/// Who is on the other end of an accepted hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Session {
    /// The contact's address in the store: `visitor:<hash of the token>`, or
    /// `user:<id>` for a verified signed-in user (their history follows them
    /// across devices).
    pub(super) address: String,
    last_seen: Option<String>,
}

/// Why a hello is refused (the socket is then closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) code: &'static str,
    pub(super) message: &'static str,
}

pub(super) fn is_token(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The hex HMAC-SHA256 of `user_id` under `secret`: what the shop's backend
/// computes and passes to `Frontdesk.identify(userId, signature)`.
pub fn identity_signature(secret: &str, user_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn identity_holds(secret: &str, user_id: &str, signature: &str) -> bool {
    let Ok(signature) = hex::decode(signature.trim()) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(user_id.as_bytes());
    mac.verify_slice(&signature).is_ok() // constant time
}

/// Checks a hello (or an upload's credentials) and says who the visitor is.
pub(super) fn accept_hello(
    config: &WebchatConfig,
    visitor: &str,
    last_seen: Option<String>,
    user: Option<&UserClaim>,
) -> Result<Session, Refusal> {
    // At least 128 bits of the widget's randomness (22 base64url or 32 hex characters).
    if !is_token(visitor, 22, 128) {
        return Err(Refusal {
            code: "bad_visitor",
            message: "the visitor token must be 22 to 128 letters, digits, - or _",
        });
    }
    let address = match (user, &config.identity_secret) {
        (Some(user), Some(secret)) => {
            let id_ok = !user.id.is_empty()
                && user.id.len() <= 128
                && !user.id.chars().any(char::is_control);
            if !id_ok || !identity_holds(secret.expose(), &user.id, &user.signature) {
                return Err(Refusal {
                    code: "identity",
                    message: "the user's identity signature does not match",
                });
            }
            format!("user:{}", user.id)
        }
        // Without a secret a claimed user id proves nothing: stay anonymous.
        _ => {
            let digest = Sha256::new()
                .chain_update(b"frontdesk-webchat-visitor:")
                .chain_update(visitor.as_bytes())
                .finalize();
            format!("visitor:{}", hex::encode(&digest[..16]))
        }
    };
    let last_seen = last_seen.filter(|id| is_token(id, 1, 64));
    Ok(Session { address, last_seen })
}

/// The messages a reconnecting visitor has not seen: everything after
/// `last_seen` in `recent` (oldest first). Messages stamped in the same
/// millisecond as `last_seen` are sent again too (ties have no reliable
/// order); the widget drops ids it already shows. An unknown or missing
/// `last_seen` replays everything, which is how a reloaded page gets its history.
fn unseen(recent: &[StoredMessage], last_seen: Option<&str>) -> Vec<StoredMessage> {
    let seen_at = last_seen.and_then(|id| recent.iter().find(|m| m.id == id));
    match seen_at {
        Some(seen) => recent
            .iter()
            .filter(|m| m.created_ms >= seen.created_ms && m.id != seen.id)
            .cloned()
            .collect(),
        None => recent.to_vec(),
    }
}

/// Text a visitor may send: trimmed, not empty, not too long.
fn checked_text(text: &str) -> Result<&str, (&'static str, String)> {
    let text = text.trim();
    if text.is_empty() {
        return Err(("empty", "the message is empty".into()));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err((
            "too_long",
            format!("messages are limited to {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(text)
}

/// One open socket: the hello, the replay, then frames both ways until the
/// visitor leaves, goes quiet, or breaks the rules.
async fn run_socket(state: AppState, mut socket: WebSocket) {
    let first = match tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(Some(Ok(Message::Binary(_)))) => {
            close(&mut socket, 1003, "binary frames are not accepted").await;
            return;
        }
        Ok(_) => return,
        Err(_) => {
            close(&mut socket, 1008, "no hello").await;
            return;
        }
    };
    let accepted = match serde_json::from_str::<ClientFrame>(&first) {
        Ok(ClientFrame::Hello {
            visitor,
            last_seen,
            user,
        }) => accept_hello(&state.chat_hub.config, &visitor, last_seen, user.as_ref()),
        _ => Err(Refusal {
            code: "bad_frame",
            message: "the first frame must be a hello",
        }),
    };
    let session = match accepted {
        Ok(session) => session,
        Err(refusal) => {
            tracing::warn!(code = refusal.code, "web chat hello refused");
            let frame = ServerFrame::error(refusal.code, refusal.message, None);
            let _ = send(&mut socket, &frame).await;
            close(&mut socket, 1008, refusal.message).await;
            return;
        }
    };
    // Subscribe before reading the history: a reply pushed in between arrives
    // twice rather than never, and `sent_ids` drops the second copy.
    let mut subscription = state.chat_hub.subscribe(&session.address);
    let mut sent_ids = HashSet::new();
    let recent = state
        .store
        .recent_conversation_messages(
            Channel::Webchat,
            &session.address,
            BUSINESS_ACCOUNT,
            REPLAY_LIMIT,
        )
        .await;
    let recent = match recent {
        Ok(recent) => recent,
        Err(error) => {
            tracing::error!(%error, "web chat replay failed");
            let _ = send(
                &mut socket,
                &ServerFrame::error("unavailable", "try again shortly", None),
            )
            .await;
            close(&mut socket, 1011, "store unavailable").await;
            return;
        }
    };
    let replay = unseen(&recent, session.last_seen.as_deref());
    for stored in &replay {
        sent_ids.insert(stored.id.clone());
        if !send(&mut socket, &ServerFrame::from_stored(stored)).await {
            return;
        }
    }
    let ready = ServerFrame::Ready {
        replayed: replay.len(),
    };
    if !send(&mut socket, &ready).await {
        return;
    }

    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let mut last_message = Instant::now();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let reply = match serde_json::from_str::<ClientFrame>(&text) {
                            Ok(ClientFrame::Message { client_id, text }) => {
                                last_message = Instant::now();
                                receive(&state, &session, subscription.id, &client_id, &text).await
                            }
                            Ok(ClientFrame::Hello { .. }) => {
                                ServerFrame::error("bad_frame", "hello is sent once per socket", None)
                            }
                            Err(error) => ServerFrame::error("bad_frame", error.to_string(), None),
                        };
                        if let ServerFrame::Ack { id, .. } = &reply {
                            // The visitor's own message: never echo it back as a message frame.
                            sent_ids.insert(id.clone());
                        }
                        if !send(&mut socket, &reply).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        close(&mut socket, 1003, "binary frames are not accepted").await;
                        break;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            }
            pushed = subscription.frames.recv() => {
                let Some(frame) = pushed else {
                    close(&mut socket, 1013, "reconnect").await;
                    break;
                };
                if let ServerFrame::Message { id, .. } = &frame {
                    if !sent_ids.insert(id.clone()) {
                        continue;
                    }
                }
                if !send(&mut socket, &frame).await {
                    break;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    break;
                }
                if last_message.elapsed() > IDLE_TIMEOUT {
                    close(&mut socket, 1000, "idle").await;
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Handles one visitor message: checked, rate limited, persisted, then acknowledged.
async fn receive(
    state: &AppState,
    session: &Session,
    socket_id: u64,
    client_id: &str,
    text: &str,
) -> ServerFrame {
    if !is_token(client_id, 1, 64) {
        return ServerFrame::error(
            "bad_frame",
            "client_id must be 1 to 64 letters, digits, - or _",
            None,
        );
    }
    let text = match checked_text(text) {
        Ok(text) => text,
        Err((code, message)) => return ServerFrame::error(code, message, Some(client_id)),
    };
    if !state.limiter.allow(&format!("webchat:{}", session.address)) {
        return ServerFrame::error(
            "rate_limited",
            "too many messages; try again in a moment",
            Some(client_id),
        );
    }
    let at = now_ms();
    let message = InboundMessage {
        channel: Channel::Webchat,
        provider_message_id: format!("{}:{client_id}", session.address),
        sender: session.address.clone(),
        business_account: BUSINESS_ACCOUNT.into(),
        sender_name: None,
        text: text.to_string(),
        timestamp_ms: at,
        is_echo: false,
        thread_ref: None,
        subject: None,
        attachments: Vec::new(),
    };
    let (message, attachments) = crate::attachments::prepare(state, &message).await;
    let stored = match state
        .ingest
        .ingest(message.clone(), attachments.clone())
        .await
    {
        Ok(Ingested::New { message_id, .. }) => {
            state
                .metrics
                .increment("frontdesk_messages_in_total{channel=\"webchat\"}");
            state.new_work.notify_one();
            // The visitor's other tabs show it too.
            let frame = ServerFrame::Message {
                id: message_id.clone(),
                from: Author::Customer,
                text: message.text.clone(),
                at,
            };
            state
                .chat_hub
                .push_except(&session.address, socket_id, &frame);
            Ok(Some(message_id))
        }
        // A resend after a reconnect: acknowledge the first copy, answer nothing.
        Ok(Ingested::Duplicate) => {
            state
                .metrics
                .increment("frontdesk_duplicate_webhooks_total");
            state
                .store
                .message_id_by_provider_id(Channel::Webchat, &message.provider_message_id)
                .await
        }
        Ok(other) => {
            tracing::error!(?other, "web chat message stored as something else");
            Ok(None)
        }
        Err(error) => Err(error),
    };
    match stored {
        Ok(Some(id)) => {
            tracing::info!(provider_id = %message.provider_message_id, "inbound web chat message");
            ServerFrame::Ack {
                client_id: client_id.to_string(),
                id,
            }
        }
        Ok(None) => ServerFrame::error("unavailable", "try again shortly", Some(client_id)),
        Err(error) => {
            tracing::error!(%error, "storing a web chat message failed");
            ServerFrame::error("unavailable", "try again shortly", Some(client_id))
        }
    }
}

/// Sends one frame; false when the socket is gone.
async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> bool {
    let Ok(json) = serde_json::to_string(frame) else {
        return false;
    };
    socket.send(Message::Text(json.into())).await.is_ok()
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
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

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, created_ms: i64) -> StoredMessage {
        StoredMessage {
            id: id.into(),
            direction: "in".into(),
            author: "customer".into(),
            text: id.into(),
            status: "received".into(),
            action: None,
            reason: None,
            sources: None,
            created_ms,
        }
    }

    fn ids(messages: &[StoredMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn replay_starts_after_last_seen_and_repeats_same_millisecond_ties() {
        let recent = [
            stored("a", 1),
            stored("b", 2),
            stored("c", 2),
            stored("d", 3),
        ];
        assert_eq!(ids(&unseen(&recent, Some("b"))), ["c", "d"]);
        assert_eq!(ids(&unseen(&recent, Some("c"))), ["b", "d"]);
        assert_eq!(ids(&unseen(&recent, Some("d"))), Vec::<&str>::new());
        assert_eq!(ids(&unseen(&recent, None)), ["a", "b", "c", "d"]);
        assert_eq!(ids(&unseen(&recent, Some("gone"))), ["a", "b", "c", "d"]);
    }

    #[test]
    fn identity_signature_is_checked_only_when_a_secret_is_set() {
        let token = "k3J9x_Qz-8mN2pLr5tVw7yA1";
        let claim = |signature: &str| UserClaim {
            id: "42".into(),
            signature: signature.into(),
        };
        let open = WebchatConfig::default();
        let anonymous = accept_hello(&open, token, None, Some(&claim("00"))).unwrap();
        assert!(anonymous.address.starts_with("visitor:"));
        assert!(
            !anonymous.address.contains(token),
            "the token is not stored"
        );

        let secured = WebchatConfig {
            identity_secret: Some(Secret::new("shop-secret")),
            ..WebchatConfig::default()
        };
        let good = identity_signature("shop-secret", "42");
        assert_eq!(
            accept_hello(&secured, token, None, Some(&claim(&good)))
                .unwrap()
                .address,
            "user:42"
        );
        let forged = identity_signature("another-secret", "42");
        assert_eq!(
            accept_hello(&secured, token, None, Some(&claim(&forged)))
                .unwrap_err()
                .code,
            "identity"
        );
        assert_eq!(
            accept_hello(&secured, token, None, Some(&claim("not hex")))
                .unwrap_err()
                .code,
            "identity"
        );
        // Anonymous visitors are still welcome when a secret is set.
        assert!(accept_hello(&secured, token, None, None).is_ok());
    }

    #[test]
    fn short_or_odd_visitor_tokens_are_refused() {
        let config = WebchatConfig::default();
        assert!(accept_hello(&config, "abc", None, None).is_err());
        assert!(accept_hello(&config, "a b c d e f g h i j k l m n", None, None).is_err());
        assert!(accept_hello(&config, &"x".repeat(129), None, None).is_err());
    }

    #[test]
    fn text_is_trimmed_and_capped() {
        assert_eq!(checked_text("  hi \n").unwrap(), "hi");
        assert_eq!(checked_text(" \n ").unwrap_err().0, "empty");
        assert!(checked_text(&"é".repeat(MAX_TEXT_CHARS)).is_ok());
        assert_eq!(
            checked_text(&"é".repeat(MAX_TEXT_CHARS + 1)).unwrap_err().0,
            "too_long"
        );
    }

    #[test]
    fn origins_are_open_by_default_and_exact_when_listed() {
        assert!(WebchatConfig::default().origin_allowed(None));
        let config = WebchatConfig {
            allowed_origins: vec!["https://shop.example".into()],
            ..WebchatConfig::default()
        };
        assert!(config.origin_allowed(Some("https://shop.example")));
        assert!(!config.origin_allowed(Some("https://shop.example.evil")));
        assert!(!config.origin_allowed(None));
    }

    #[test]
    fn frames_serialise_to_the_documented_shape() {
        let ack = ServerFrame::Ack {
            client_id: "c1".into(),
            id: "m1".into(),
        };
        assert_eq!(
            serde_json::to_value(&ack).unwrap(),
            serde_json::json!({"type": "ack", "client_id": "c1", "id": "m1"})
        );
        let message = ServerFrame::from_stored(&StoredMessage {
            author: "bot".into(),
            ..stored("m2", 5)
        });
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            serde_json::json!({"type": "message", "id": "m2", "from": "assistant", "text": "m2", "at": 5})
        );
    }
}
