//! Provider webhooks: verify the signature on the raw body, parse through
//! `channels`, persist every message before answering 200. A bad or missing
//! signature is refused with 401 and nothing is stored; so is a Mailgun post
//! whose signed timestamp and token were used before (`replay`).

use super::{AppError, AppState};
use crate::channels::{self, ChannelError, Inbound};
use crate::store::{Ingested, UnknownSend};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/webhooks/whatsapp",
            get(whatsapp_handshake).post(whatsapp_messages),
        )
        .route("/webhooks/meta", get(meta_handshake).post(meta_messages))
        .route("/webhooks/twilio", post(twilio_messages))
}

/// Inbound email, which carries its attachments in the body: served under a
/// larger body limit than the other webhooks (see `http::upload_body_limit`).
pub fn email_routes() -> Router<AppState> {
    Router::new().route("/webhooks/email", post(email_messages))
}

impl From<ChannelError> for AppError {
    fn from(error: ChannelError) -> Self {
        match error {
            ChannelError::BadSignature | ChannelError::StaleTimestamp => AppError::Unauthorized,
            ChannelError::Malformed(reason) => AppError::BadRequest(reason),
        }
    }
}

/// A token bucket per sender (channel + address): providers post from a few
/// addresses, so limiting per IP would throttle every customer at once.
pub struct SenderLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    burst: f64,
    per_second: f64,
}

impl SenderLimiter {
    pub fn new(burst: f64, per_second: f64) -> Self {
        SenderLimiter {
            buckets: Mutex::new(HashMap::new()),
            burst,
            per_second,
        }
    }

    pub fn allow(&self, key: &str) -> bool {
        self.admit(key).is_ok()
    }

    /// Takes one token for `key`, or says in how many whole seconds the
    /// next one is due (what a `Retry-After` header carries).
    pub fn admit(&self, key: &str) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            buckets.clear(); // bounded memory; a reset only forgives
        }
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else if self.per_second > 0.0 {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        } else {
            Err(3600)
        }
    }
}

/// Stores every parsed item; returns how many new messages were queued.
async fn persist(state: &AppState, items: Vec<Inbound>) -> Result<usize, AppError> {
    for item in &items {
        if let Inbound::Message(message) = item {
            if message.is_echo {
                continue;
            }
            // After the signature check and the parse: the key is a sender the
            // provider vouched for, and nothing of a refused post is stored.
            let key = format!("{}:{}", message.channel, message.sender);
            if let Err(retry_after) = state.limiter.admit(&key) {
                state
                    .metrics
                    .increment("frontdesk_webhooks_rate_limited_total");
                return Err(AppError::TooManyRequests { retry_after });
            }
        }
    }
    let mut queued = 0;
    for item in items {
        match item {
            Inbound::Message(message) => {
                // Photo ids and markers; inline bytes are checked and written now.
                let (message, attachments) = crate::attachments::prepare(state, &message).await;
                // The next group commit: answered once its batch is durable.
                let outcome = state
                    .ingest
                    .ingest(message.clone(), attachments.clone())
                    .await;
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        crate::attachments::discard(state, &attachments).await;
                        return Err(error.into());
                    }
                };
                tracing::info!(channel = %message.channel, provider_id = %message.provider_message_id, ?outcome, "inbound message");
                match outcome {
                    Ingested::New { .. } => {
                        queued += 1;
                        state.metrics.increment(&format!(
                            "frontdesk_messages_in_total{{channel=\"{}\"}}",
                            message.channel
                        ));
                    }
                    Ingested::Duplicate => {
                        crate::attachments::discard(state, &attachments).await;
                        state
                            .metrics
                            .increment("frontdesk_duplicate_webhooks_total")
                    }
                    Ingested::HumanReply { .. } => {
                        state.metrics.increment("frontdesk_human_replies_total")
                    }
                    Ingested::OwnEcho => {}
                }
            }
            Inbound::Status(update) => {
                // A status naming a send we handed over as unknown settles it;
                // any other goes by the provider's message id.
                match state.store.settle_unknown_send(&update).await? {
                    UnknownSend::NotUnknown => {
                        state.store.apply_status(&update).await?;
                    }
                    settled => {
                        tracing::info!(channel = %update.channel, ?settled, "a status settled a send whose outcome was unknown");
                        state
                            .metrics
                            .increment("frontdesk_unknown_sends_settled_total");
                    }
                }
            }
        }
    }
    if queued > 0 {
        state.new_work.notify_waiters();
        state.new_work.notify_one();
    }
    Ok(queued)
}

fn observe(state: &AppState, channel: &str, started: Instant) {
    state.metrics.observe_ms(
        &format!("frontdesk_webhook_ack_seconds{{channel=\"{channel}\"}}"),
        started.elapsed().as_secs_f64() * 1000.0,
    );
}

async fn whatsapp_handshake(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    handshake(
        state
            .settings
            .whatsapp
            .verify_token
            .as_ref()
            .map(|t| t.expose()),
        &query,
    )
}

async fn meta_handshake(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    handshake(
        state
            .settings
            .meta
            .verify_token
            .as_ref()
            .map(|t| t.expose()),
        &query,
    )
}

fn handshake(expected: Option<&str>, query: &HashMap<String, String>) -> Response {
    let Some(expected) = expected else {
        return AppError::NotConfigured("the verify token").into_response();
    };
    let get = |key: &str| query.get(key).map(String::as_str);
    match channels::graph::verify_handshake(
        get("hub.mode"),
        get("hub.verify_token"),
        get("hub.challenge"),
        expected,
    ) {
        Some(challenge) => (StatusCode::OK, challenge).into_response(),
        None => (StatusCode::FORBIDDEN, "verify token mismatch").into_response(),
    }
}

/// Which Graph webhook a post is for: its settings, parser and metric label.
struct GraphWebhook {
    name: &'static str,
    label: &'static str,
    parse: fn(&[u8]) -> Result<Vec<Inbound>, ChannelError>,
}

const WHATSAPP: GraphWebhook = GraphWebhook {
    name: "WhatsApp",
    label: "whatsapp",
    parse: channels::whatsapp::parse_webhook,
};
const META: GraphWebhook = GraphWebhook {
    name: "Messenger/Instagram",
    label: "meta",
    parse: channels::meta::parse_webhook,
};

/// WhatsApp, Messenger and Instagram share one scheme: HMAC-SHA256 of the raw
/// body with the app secret in `X-Hub-Signature-256`, checked before parsing.
async fn graph_messages(
    state: &AppState,
    webhook: GraphWebhook,
    secret: Option<&crate::config::Secret>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<&'static str, AppError> {
    let started = Instant::now();
    let secret = secret.ok_or(AppError::NotConfigured(webhook.name))?;
    let signature = headers
        .get(channels::graph::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    channels::graph::verify_signature(secret.expose().as_bytes(), signature, body)?;
    let items = (webhook.parse)(body)?;
    persist(state, items).await?;
    observe(state, webhook.label, started);
    Ok("ok")
}

async fn whatsapp_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<&'static str, AppError> {
    let secret = state.settings.whatsapp.app_secret.clone();
    graph_messages(&state, WHATSAPP, secret.as_ref(), &headers, &body).await
}

async fn meta_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<&'static str, AppError> {
    let secret = state.settings.meta.app_secret.clone();
    graph_messages(&state, META, secret.as_ref(), &headers, &body).await
}

async fn twilio_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let token = state
        .settings
        .twilio
        .auth_token
        .as_ref()
        .ok_or(AppError::NotConfigured("Twilio"))?;
    let (fields, item) = channels::twilio::parse_form(&body, crate::store::now_ms())?;
    let url = format!("{}/webhooks/twilio", state.public_base);
    let signature = headers
        .get(channels::twilio::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    channels::twilio::verify_signature(token.expose(), signature, &url, &fields)?;
    persist(&state, vec![item]).await?;
    observe(&state, "sms", started);
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/xml")],
        channels::twilio::empty_twiml(),
    )
        .into_response())
}

async fn email_messages(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<&'static str, AppError> {
    let started = Instant::now();
    let key = state
        .settings
        .email
        .signing_key
        .as_ref()
        .ok_or(AppError::NotConfigured("inbound email"))?;
    let content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // An email with attachments comes as multipart/form-data: its text parts
    // are the same fields a url-encoded post has, and the signature covers them.
    let (fields, files) = if content_type.starts_with("multipart/") {
        read_multipart(request, &state).await?
    } else {
        // Read under the route's body limit: a streamed body past it is 413.
        use axum::extract::FromRequest;
        let body = Bytes::from_request(request, &state)
            .await
            .map_err(|e| AppError::Body(e.status(), format!("form body: {}", e.body_text())))?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| AppError::BadRequest(format!("form body: {e}")))?;
        (fields, Vec::new())
    };
    channels::email::verify_form(
        key.expose().as_bytes(),
        &fields,
        crate::store::now_ms() / 1000,
    )?;
    let mut message = channels::email::parse_form(&fields)?;
    channels::email::attach_parts(&mut message, files);
    // A signed (timestamp, token) pair works once, on every replica.
    let pair = super::replay::claim_mailgun(&state, &fields).await?;
    if let Err(error) = persist(&state, vec![Inbound::Message(message)]).await {
        super::replay::release(&state, &pair).await;
        return Err(error);
    }
    observe(&state, "email", started);
    Ok("ok")
}

/// A multipart post's text fields (in order) and its file parts. A file is
/// read only just past the photo cap: a bigger one comes back cut there,
/// and is refused as too large when it is kept.
async fn read_multipart(
    request: axum::extract::Request,
    state: &AppState,
) -> Result<(Vec<(String, String)>, Vec<channels::email::FilePart>), AppError> {
    use axum::extract::FromRequest;
    let bad = |e: axum::extract::multipart::MultipartError| {
        AppError::Body(
            super::body_status(&e, e.status()),
            format!("multipart body: {}", e.body_text()),
        )
    };
    let mut multipart = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|e| AppError::Body(e.status(), format!("multipart body: {}", e.body_text())))?;
    let max_bytes = state.settings.attachments.max_bytes as usize;
    let (mut fields, mut files) = (Vec::new(), Vec::new());
    while let Some(mut part) = multipart.next_field().await.map_err(bad)? {
        let name = part.name().unwrap_or("").to_string();
        if part.file_name().is_none() {
            let value = part.text().await.map_err(bad)?;
            fields.push((name, value));
            continue;
        }
        let content_type = part.content_type().map(str::to_string);
        let mut bytes = Vec::new();
        while let Some(chunk) = part.chunk().await.map_err(bad)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > max_bytes {
                break;
            }
        }
        files.push(channels::email::FilePart {
            field: name,
            content_type,
            bytes,
        });
    }
    Ok((fields, files))
}
