//! The outbox: claiming replies to send under a lease (one at a time per
//! conversation, in order), recording the result, and handing to a person the
//! sends that may or may not have reached the provider (a crash, a timeout).

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

/// How a `delivery_unknown` item's summary begins (the customer's message follows).
pub(super) const UNKNOWN_SUMMARY_PREFIX: &str = "reply may not have reached the customer: ";

impl Store {
    /// SQLite only (one process per file): frees the leases a crashed
    /// predecessor held, so its work restarts at once instead of after the lease.
    /// On PostgreSQL other replicas may hold live leases; those simply expire.
    pub async fn release_stale_leases(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("UPDATE jobs SET lease_until_ms = 0 WHERE state = 'pending'")
                .execute(&self.pool)
                .await?;
            // Sends the predecessor had started: settle_interrupted_sends takes them.
            sqlx::query("UPDATE outbox SET lease_until_ms = 0 WHERE state = 'sending'")
                .execute(&self.pool)
                .await?;
        }
        self.settle_interrupted_sends().await?;
        Ok(())
    }

    /// Sends interrupted by a crash (state `sending`, lease expired) may or may
    /// not have reached the provider, and the providers offer no idempotency key
    /// to ask. Sending again could reach the customer twice; not sending could
    /// leave them unanswered. So neither: an SMS goes back to the queue marked
    /// unconfirmed (the delivery worker asks Twilio's message list before
    /// resending); any other reply is marked `unknown` and the conversation goes
    /// to a person with a queue item (`delivery_unknown`). Returns how many
    /// were settled.
    pub async fn settle_interrupted_sends(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT id, channel FROM outbox WHERE state = 'sending' AND lease_until_ms < $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut settled = 0;
        for row in rows {
            let outbox_id: String = row.try_get("id")?;
            let channel: String = row.try_get("channel")?;
            let done = if channel_of(&channel) == crate::domain::Channel::Sms {
                // The attempt began one lease before it ran out; leases are at
                // most a few minutes, so ten minutes back is sure to cover it.
                sqlx::query(
                    "UPDATE outbox SET state = 'pending', next_attempt_ms = $2, lease_until_ms = 0, \
                     unconfirmed_ms = COALESCE(unconfirmed_ms, lease_until_ms - 600000), last_error = 'interrupted while sending' \
                     WHERE id = $1 AND state = 'sending' RETURNING id",
                )
                .bind(&outbox_id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .is_some()
            } else {
                self.hand_over(&outbox_id, "sending", "interrupted while sending")
                    .await?
            };
            if done {
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// A send that may have reached the provider and cannot be checked there:
    /// handed to a person like an interrupted one (`delivery_unknown`).
    pub async fn mark_send_unknown(
        &self,
        item: &OutboxItem,
        error: &str,
    ) -> Result<(), StoreError> {
        self.hand_over(&item.id, "sending", error).await?;
        Ok(())
    }

    /// Marks the row `unknown` (if it is still in `from_state`), the reply
    /// `unknown`, opens a `delivery_unknown` queue item and gives the
    /// conversation to a person, in one transaction. False when another
    /// replica got there first.
    async fn hand_over(
        &self,
        outbox_id: &str,
        from_state: &str,
        error: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query("UPDATE outbox SET state = 'unknown', lease_until_ms = 0, last_error = $3 WHERE id = $1 AND state = $2 RETURNING message_id")
            .bind(outbox_id)
            .bind(from_state)
            .bind(error)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(claimed) = claimed else {
            return Ok(false);
        };
        let reply_id: String = claimed.try_get("message_id")?;
        let row = sqlx::query("UPDATE messages SET status = 'unknown', updated_ms = $2 WHERE id = $1 RETURNING conversation_id, reply_to")
            .bind(&reply_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let conversation_id: String = row.try_get("conversation_id")?;
        let inbound_id: Option<String> = row.try_get("reply_to")?;
        let summary: String = match &inbound_id {
            Some(id) => sqlx::query("SELECT text FROM messages WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<String, _>("text"))
                .transpose()?
                .unwrap_or_default(),
            None => String::new(),
        };
        sqlx::query(
            "INSERT INTO queue_items (id, conversation_id, message_id, reason, priority, summary, state, created_ms) \
             VALUES ($1, $2, $3, 'delivery_unknown', 1, $4, 'open', $5) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(new_id())
        .bind(&conversation_id)
        .bind(inbound_id.unwrap_or(reply_id))
        .bind(format!("{UNKNOWN_SUMMARY_PREFIX}{}", summary.chars().take(240).collect::<String>()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE conversations SET owner = 'human', status = 'waiting', updated_ms = $2 WHERE id = $1")
            .bind(&conversation_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        events::record_in(&mut tx, "queue", Some(&conversation_id)).await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl Store {
    /// Claims up to `limit` due outbox rows, oldest due first, at most one per
    /// conversation: a row is taken only when no other row of its conversation
    /// is being sent and none created before it is still waiting. So one
    /// conversation's replies leave one at a time, in the order they were
    /// written, however many workers or replicas claim (the states that block
    /// are `pending` and `sending`, and a row leaves them only once).
    pub async fn claim_outbox(
        &self,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE OF o SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let claim = format!(
            "UPDATE outbox SET state = 'sending', lease_until_ms = $1, attempts = attempts + 1 WHERE id IN \
             (SELECT o.id FROM outbox o JOIN messages m ON m.id = o.message_id \
              WHERE o.state = 'pending' AND o.next_attempt_ms <= $2 AND o.lease_until_ms < $2 \
              AND NOT EXISTS (SELECT 1 FROM messages em JOIN outbox e ON e.message_id = em.id \
                WHERE em.conversation_id = m.conversation_id AND e.id <> o.id \
                AND (e.state = 'sending' OR (e.state = 'pending' AND (e.created_ms < o.created_ms OR (e.created_ms = o.created_ms AND e.id < o.id))))) \
              ORDER BY o.next_attempt_ms, o.created_ms LIMIT $3 {lock}) \
             RETURNING id, message_id, idempotency_key, channel, recipient, business_account, text, subject, in_reply_to, attempts, template, tag, unconfirmed_ms"
        );
        let rows: Vec<AnyRow> = sqlx::query(sqlx::AssertSqlSafe(claim))
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_item).collect()
    }

    /// Whether a provider message id already belongs to one of our sends (a
    /// reconciliation must not take another reply's message for this one).
    pub async fn provider_id_known(&self, provider_message_id: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT id FROM outbox WHERE provider_message_id = $1")
                .bind(provider_message_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// A provider is answering again: rows of `channel` waiting out our own
    /// backoff are due now (rows the provider asked to wait, and unconfirmed
    /// ones, keep their time). Returns how many.
    pub async fn hurry_retries(&self, channel: crate::domain::Channel) -> Result<u64, StoreError> {
        let now = now_ms();
        Ok(sqlx::query(
            "UPDATE outbox SET next_attempt_ms = $1 WHERE state = 'pending' AND channel = $2 \
             AND attempts > 0 AND next_attempt_ms > $1 AND not_before_ms <= $1",
        )
        .bind(now)
        .bind(channel.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// An attempt that may have reached the provider, on a channel that can be
    /// asked: tried again at `next_attempt_ms` (and not before), after asking
    /// the provider whether it has the message since `attempt_started_ms`.
    pub async fn mark_unconfirmed(
        &self,
        item: &OutboxItem,
        error: &str,
        attempt_started_ms: i64,
        next_attempt_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET state = 'pending', next_attempt_ms = $2, not_before_ms = $2, lease_until_ms = 0, last_error = $3, \
                     unconfirmed_ms = COALESCE(unconfirmed_ms, $4) WHERE id = $1")
            .bind(&item.id)
            .bind(next_attempt_ms)
            .bind(error)
            .bind(attempt_started_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn mark_sent(
        &self,
        item: &OutboxItem,
        provider_message_id: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE outbox SET state = 'sent', provider_message_id = $2, lease_until_ms = 0 WHERE id = $1")
            .bind(&item.id)
            .bind(provider_message_id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("UPDATE messages SET status = 'sent', provider_message_id = $2, updated_ms = $3 WHERE id = $1 RETURNING conversation_id")
            .bind(&item.message_id)
            .bind(provider_message_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let conversation_id: String = row.try_get("conversation_id")?;
        events::record_in(&mut tx, "status", Some(&conversation_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A failed send: retried at `next_attempt_ms`, or given up (`None`).
    /// `provider_asked` when the provider named that time (Retry-After): it is
    /// then never brought forward.
    pub async fn mark_send_failure(
        &self,
        item: &OutboxItem,
        error: &str,
        next_attempt_ms: Option<i64>,
        provider_asked: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        match next_attempt_ms {
            Some(next) => {
                sqlx::query("UPDATE outbox SET state = 'pending', next_attempt_ms = $2, not_before_ms = $4, lease_until_ms = 0, last_error = $3 WHERE id = $1")
                    .bind(&item.id)
                    .bind(next)
                    .bind(error)
                    .bind(if provider_asked { next } else { 0 })
                    .execute(&self.pool)
                    .await?;
            }
            None => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE outbox SET state = 'failed', lease_until_ms = 0, last_error = $2 WHERE id = $1")
                    .bind(&item.id)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query("UPDATE messages SET status = 'failed', error = $3, updated_ms = $2 WHERE id = $1 RETURNING conversation_id")
                    .bind(&item.message_id)
                    .bind(now)
                    .bind(error)
                    .fetch_one(&mut *tx)
                    .await?;
                let conversation_id: String = row.try_get("conversation_id")?;
                events::record_in(&mut tx, "status", Some(&conversation_id)).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

/// One outbox row as it stands (tests and reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub id: String,
    /// `pending`, `sending`, `sent`, `unknown` or `failed`.
    pub state: String,
    pub channel: String,
    pub text: String,
    pub attempts: i64,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
}

impl Store {
    /// The outbox row `outbox_id`, if there is one.
    pub async fn outbox_record(&self, outbox_id: &str) -> Result<Option<OutboxRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, state, channel, text, attempts, provider_message_id, last_error FROM outbox WHERE id = $1",
        )
        .bind(outbox_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(OutboxRecord {
                id: row.try_get("id")?,
                state: row.try_get("state")?,
                channel: row.try_get("channel")?,
                text: row.try_get("text")?,
                attempts: row.try_get("attempts")?,
                provider_message_id: row.try_get("provider_message_id")?,
                last_error: row.try_get("last_error")?,
            })
        })
        .transpose()
    }
}

fn outbox_item(row: &AnyRow) -> Result<OutboxItem, StoreError> {
    Ok(OutboxItem {
        id: row.try_get("id")?,
        message_id: row.try_get("message_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        channel: channel_of(&row.try_get::<String, _>("channel")?),
        recipient: row.try_get("recipient")?,
        business_account: row.try_get("business_account")?,
        text: row.try_get("text")?,
        subject: row.try_get("subject")?,
        in_reply_to: row.try_get("in_reply_to")?,
        attempts: row.try_get("attempts")?,
        template: row.try_get("template")?,
        tag: row.try_get("tag")?,
        unconfirmed_since_ms: row.try_get("unconfirmed_ms")?,
    })
}
