//! Signed webhook posts seen before: Mailgun signs `timestamp + token`, so a
//! captured post stays valid for its whole freshness window unless the pair
//! is remembered. The pair is kept (as a sha256, never as sent) in
//! `webhook_tokens`, so every replica on one PostgreSQL database refuses a
//! second use; rows older than the caller's window are pruned on each claim.
//!
//! The claim is an insert-if-absent (`ON CONFLICT DO NOTHING … RETURNING`):
//! of two replicas racing on one pair, exactly one gets `true`.

use super::*;
use sha2::{Digest, Sha256};

/// The stored name of a signed pair: sha256 of the scope, the timestamp and
/// the token, each followed by a NUL so no two different pairs meet.
pub fn replay_key(scope: &str, timestamp: &str, token: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [scope, timestamp, token] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

impl Store {
    /// Records `key` (from [`replay_key`]) as used at `now_ms`. Returns true
    /// when it was new, false when it had been claimed before (a replay).
    /// Forgets keys claimed more than `keep_ms` ago first: the caller refuses
    /// their timestamps as stale anyway, so they cannot come back.
    pub async fn claim_replay_key(
        &self,
        key: &str,
        now_ms: i64,
        keep_ms: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM webhook_tokens WHERE seen_ms < $1")
            .bind(now_ms.saturating_sub(keep_ms))
            .execute(&self.pool)
            .await?;
        let row: Option<AnyRow> = sqlx::query(
            "INSERT INTO webhook_tokens (token_hash, seen_ms) VALUES ($1, $2) \
             ON CONFLICT (token_hash) DO NOTHING RETURNING token_hash",
        )
        .bind(key)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Gives a claimed key back, when the post it came with could not be
    /// stored: the provider's retry of the same post must then get through.
    pub async fn release_replay_key(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_tokens WHERE token_hash = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many keys are remembered (tests).
    pub async fn replay_keys(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM webhook_tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

#[cfg(test)]
mod tests;
