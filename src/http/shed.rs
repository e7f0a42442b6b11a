//! Load shedding in front of the webhooks: at most `[limits]
//! inflight_webhooks` webhook requests, holding at most `[limits]
//! inflight_body_mb` of bodies, are handled at once, and one more is
//! answered `503 Service Unavailable` with `Retry-After` at once, before its
//! body is read or anything is stored. A request's bytes are its
//! `Content-Length`, or the largest body a webhook route takes when it does
//! not say (a chunked post). The providers retry a 503, so a flood
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
        return shed(&state, &request, "busy: too many webhooks in flight");
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let Some(bytes) = state.webhook_bytes.try_reserve(declared) else {
        return shed(&state, &request, "busy: too many webhook bytes in flight");
    };
    let response = next.run(request).await;
    drop(bytes);
    drop(slot);
    response
}

/// One refused request: counted, logged with its path, answered 503.
fn shed(state: &AppState, request: &Request, why: &'static str) -> Response {
    state.metrics.increment("frontdesk_webhooks_shed_total");
    tracing::warn!(path = %request.uri().path(), why, "webhook shed");
    let mut response = unavailable(SHED_RETRY_AFTER_SECONDS, why);
    // The body was never read, so the connection cannot carry another
    // request: say so, or a client that pools it writes its next post into
    // a socket the server is closing (a broken pipe instead of an answer).
    response.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// The bytes of webhook bodies in flight, counted in KiB permits.
pub struct BodyBudget {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// The whole budget, in KiB.
    total_kib: u32,
    /// What a post that does not say its length reserves: the largest body
    /// a webhook route takes, at most the whole budget.
    unknown_kib: u32,
}

impl BodyBudget {
    /// A budget of `megabytes` (at least 1), for routes whose largest body is
    /// `largest_body` bytes.
    pub fn new(megabytes: usize, largest_body: usize) -> BodyBudget {
        let total_kib =
            u32::try_from(megabytes.max(1).saturating_mul(1024)).unwrap_or(u32::MAX >> 4);
        let unknown_kib = kib(largest_body as u64).min(total_kib);
        BodyBudget {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
            unknown_kib,
        }
    }

    /// Reserves a post's bytes (its `Content-Length`, if it gave one), or
    /// `None` when they are not free now. A post bigger than the whole budget
    /// reserves all of it: the route's own body limit refuses it (413) anyway.
    pub fn try_reserve(&self, declared: Option<u64>) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let wanted = declared
            .map(|bytes| kib(bytes).min(self.total_kib))
            .unwrap_or(self.unknown_kib)
            .max(1);
        self.permits.clone().try_acquire_many_owned(wanted).ok()
    }
}

/// Whole KiB, rounded up.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
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

#[cfg(test)]
mod tests {
    use super::BodyBudget;

    #[test]
    fn the_byte_budget_refuses_what_does_not_fit_and_frees_it_after() {
        let budget = BodyBudget::new(1, 4 * 1024 * 1024);
        let big = budget
            .try_reserve(Some(700 * 1024))
            .expect("700 KiB fits in 1 MiB");
        assert!(
            budget.try_reserve(Some(400 * 1024)).is_none(),
            "400 more does not"
        );
        let small = budget
            .try_reserve(Some(324 * 1024))
            .expect("the last 324 KiB do");
        assert!(budget.try_reserve(Some(1)).is_none(), "the budget is spent");
        drop(big);
        assert!(
            budget.try_reserve(None).is_none(),
            "an unsized post reserves the whole budget here"
        );
        drop(small);
        let unsized_post = budget
            .try_reserve(None)
            .expect("with nothing in flight it gets in");
        assert!(
            budget.try_reserve(Some(0)).is_none(),
            "even an empty post counts one KiB"
        );
        drop(unsized_post);
        assert!(
            budget.try_reserve(Some(u64::MAX)).is_some(),
            "a huge claim takes the whole budget, no more"
        );
    }
}
