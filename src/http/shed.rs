//! Load shedding in front of the webhooks: at most `[limits]
//! inflight_webhooks` webhook requests are handled at once, and one more is
//! answered `503 Service Unavailable` with `Retry-After` at once, before its
//! body is read or anything is stored. The providers retry a 503, so a flood
//! is turned back at the door instead of piling up bodies in memory and
//! waiters in front of the group commit.
//!
//! This never acknowledges anything: a request that gets a slot goes on to the
//! handler, which answers 200 only after its message is committed.
//!
//! A hand-made layer rather than tower's `ConcurrencyLimit` + `LoadShed`: the
//! budget must be one semaphore shared by every webhook route (axum builds a
//! layer per route), and the refusal must carry a `Retry-After` header.

use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What a shed request is told to wait: the queue in front of it drains in
/// well under a second, and providers back off further by themselves.
pub const SHED_RETRY_AFTER_SECONDS: u64 = 1;

/// The middleware (`axum::middleware::from_fn_with_state`) over the webhook routes.
pub async fn limit_webhooks(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(slot) = state.webhook_slots.clone().try_acquire_owned() else {
        state.metrics.increment("frontdesk_webhooks_shed_total");
        tracing::warn!(path = %request.uri().path(), "webhook shed: too many in flight");
        return unavailable(
            SHED_RETRY_AFTER_SECONDS,
            "busy: too many webhooks in flight",
        );
    };
    let response = next.run(request).await;
    drop(slot);
    response
}

/// 503 with `Retry-After` in whole seconds.
pub fn unavailable(retry_after: u64, text: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, retry_after.to_string())],
        text,
    )
        .into_response()
}
