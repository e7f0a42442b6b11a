//! Replay refusal for signed webhook posts whose signature covers a
//! timestamp and a one-time token instead of the body (Mailgun): the pair is
//! claimed in the store, so a second use is refused on every replica.

use super::{AppError, AppState};
use crate::channels::email;

/// How long a used pair is remembered: a timestamp is accepted up to
/// `MAX_SIGNATURE_AGE_SECS` either side of now, so a pair first seen now
/// could still pass the age check for twice that; a minute more covers
/// replicas whose clocks differ a little.
const KEEP_MS: i64 = 2 * email::MAX_SIGNATURE_AGE_SECS * 1000 + 60_000;

/// Claims the post's (timestamp, token) pair, after its signature was
/// checked; a pair used before is refused like a bad signature (401). Returns
/// the stored key, to [`release`] when the post cannot be stored.
pub(super) async fn claim_mailgun(
    state: &AppState,
    fields: &[(String, String)],
) -> Result<String, AppError> {
    let (timestamp, token) = email::signed_pair(fields).ok_or(AppError::Unauthorized)?;
    let key = crate::store::replay_key("mailgun", timestamp, token);
    if state
        .store
        .claim_replay_key(&key, crate::store::now_ms(), KEEP_MS)
        .await?
    {
        Ok(key)
    } else {
        tracing::warn!("a Mailgun post reused a timestamp and token: refused as a replay");
        state.metrics.increment("frontdesk_replayed_webhooks_total");
        Err(AppError::Unauthorized)
    }
}

/// Gives the pair back: the post was not stored, and Mailgun's retry of it
/// (which may carry the same pair) must get through.
pub(super) async fn release(state: &AppState, key: &str) {
    if let Err(error) = state.store.release_replay_key(key).await {
        tracing::error!(%error, "releasing a webhook token failed");
    }
}
