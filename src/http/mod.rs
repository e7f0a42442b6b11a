//! The HTTP surface: provider webhooks, the web chat (and its photo uploads),
//! the owner's inbox (`pages`, `api`, `auth`), health, metrics. Webhook handlers verify,
//! normalise (through `channels`), persist (through `store`) and acknowledge;
//! answering happens later in the pipeline workers, never in a request.

pub mod api;
mod api_contacts;
pub mod auth;
pub mod metrics;
mod pages;
mod replay;
pub mod shed;
pub mod webchat;
mod webchat_upload;
mod webhooks;

pub use webhooks::SenderLimiter;

use crate::config::Settings;
use crate::store::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

/// Shared by every handler and worker.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Inbound messages go through here (group commit), not `store.ingest`:
    /// a handler waits until the batch holding its message is committed.
    pub ingest: crate::store::IngestWriter,
    /// The assistant being served; `current()` at the moment a message is
    /// answered (the knowledge folder is reloaded live).
    pub assistant: Arc<crate::reload::LiveAssistant>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<metrics::Metrics>,
    /// Wakes the answer workers as soon as a message is stored.
    pub new_work: Arc<tokio::sync::Notify>,
    /// Wakes the delivery worker as soon as a reply is queued.
    pub new_reply: Arc<tokio::sync::Notify>,
    /// The address providers use to reach us (Twilio signs it).
    pub public_base: String,
    pub limiter: Arc<webhooks::SenderLimiter>,
    /// The open web chat sockets, so the delivery worker can push replies.
    pub chat_hub: Arc<webchat::ChatHub>,
    /// Webhook requests in flight (`[limits] inflight_webhooks`); one past
    /// them is shed with 503 + `Retry-After` (see `shed`).
    pub webhook_slots: Arc<tokio::sync::Semaphore>,
    /// Webhook body bytes in flight (`[limits] inflight_body_mb`).
    pub webhook_bytes: Arc<shed::BodyBudget>,
    /// Sign-in attempts per account and per address.
    pub login_limiter: Arc<webhooks::SenderLimiter>,
    /// Turns true when the service stops: long-lived responses (event
    /// streams) end so the graceful shutdown does not wait on them.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// One error type for every handler: logged once, mapped to a status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bad signature")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    #[error("too many messages from one sender")]
    TooManyRequests {
        /// Whole seconds until the sender's next message is taken.
        retry_after: u64,
    },
    /// A body that could not be read, with the status its reader chose
    /// (413 when it passed the limit, 400 when it was malformed).
    #[error("{1}")]
    Body(StatusCode, String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotConfigured(_) => StatusCode::NOT_FOUND,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Body(status, _) => *status,
            AppError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::warn!(error = %self, "request refused");
        }
        // Both refusals are retried by the providers: say when.
        let retry_after = match &self {
            AppError::TooManyRequests { retry_after } => Some(*retry_after),
            AppError::Store(_) => Some(STORE_RETRY_AFTER_SECONDS),
            _ => None,
        };
        let mut response = (status, self.to_string()).into_response();
        if let Some(seconds) = retry_after {
            if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// What a 503 for a store that cannot commit (database down, disk full)
/// asks the provider to wait before it retries.
pub const STORE_RETRY_AFTER_SECONDS: u64 = 5;

/// Meta sends webhook bodies up to 3 MB; anything bigger is refused unread.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The status for a body that could not be read: 413 when the body limit cut
/// it (found anywhere in the error's chain, as a streamed body reports it),
/// otherwise the reader's own 4xx, and 400 rather than a 500 for a stream
/// that broke off: it is the sender's body, not our fault.
pub(crate) fn body_status(
    error: &(dyn std::error::Error + 'static),
    status: StatusCode,
) -> StatusCode {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.to_string().contains("length limit exceeded") {
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
        cause = e.source();
    }
    if status.is_server_error() {
        StatusCode::BAD_REQUEST
    } else {
        status
    }
}

/// The body limit of the routes that carry photos (inbound email, web chat
/// uploads): two photos at the cap plus 2 MB for the rest of the post.
pub fn upload_body_limit(max_photo_bytes: u64) -> usize {
    let cap = usize::try_from(max_photo_bytes).unwrap_or(usize::MAX / 4);
    cap.saturating_mul(2).saturating_add(2 * 1024 * 1024)
}

pub fn app(state: AppState) -> Router {
    let upload_limit = upload_body_limit(state.settings.attachments.max_bytes);
    let shed = || axum::middleware::from_fn_with_state(state.clone(), shed::limit_webhooks);
    let uploads = Router::new()
        .merge(webhooks::email_routes().route_layer(shed()))
        .merge(webchat_upload::routes())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(upload_limit))
        .layer(axum::extract::DefaultBodyLimit::max(upload_limit));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .merge(webhooks::routes().route_layer(shed()))
        .merge(webchat::routes())
        .merge(api::routes(state.clone()))
        .merge(api_contacts::routes(state.clone()))
        .merge(pages::routes(state.clone()))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .merge(uploads)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .with_state(state)
}

async fn ready(State(state): State<AppState>) -> Response {
    let store = state.store.ping().await;
    let entries = state.assistant.status().entries;
    let body = serde_json::json!({
        "store": store.is_ok(),
        "models": true,
        "index_entries": entries,
    });
    let status = if store.is_ok() && entries > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    let (jobs, outbox, queue) = state.store.depths().await.unwrap_or((-1, -1, -1));
    let text = state.metrics.render(&[
        ("frontdesk_pending_answers", jobs),
        ("frontdesk_pending_replies", outbox),
        ("frontdesk_queue_depth", queue),
    ]);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}
