//! The outbox: claiming a reply to send under a lease, recording the result,
//! and settling sends a crash interrupted.

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

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
    /// leave them unanswered. So neither: the reply is marked `unknown` and the
    /// conversation goes to a person with a queue item (`delivery_unknown`).
    /// Returns how many were settled.
    pub async fn settle_interrupted_sends(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT o.id, o.message_id, m.conversation_id, m.reply_to FROM outbox o JOIN messages m ON m.id = o.message_id \
             WHERE o.state = 'sending' AND o.lease_until_ms < $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut settled = 0;
        for row in rows {
            let outbox_id: String = row.try_get("id")?;
            let reply_id: String = row.try_get("message_id")?;
            let conversation_id: String = row.try_get("conversation_id")?;
            let inbound_id: Option<String> = row.try_get("reply_to")?;
            let mut tx = self.pool.begin().await?;
            let claimed = sqlx::query("UPDATE outbox SET state = 'unknown', last_error = 'interrupted while sending' WHERE id = $1 AND state = 'sending' RETURNING id")
                .bind(&outbox_id)
                .fetch_optional(&mut *tx)
                .await?;
            if claimed.is_none() {
                continue; // another replica settled it
            }
            sqlx::query("UPDATE messages SET status = 'unknown', updated_ms = $2 WHERE id = $1")
                .bind(&reply_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
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
            .bind(format!("reply may not have reached the customer: {}", summary.chars().take(240).collect::<String>()))
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
            settled += 1;
        }
        Ok(settled)
    }
}

impl Store {
    /// Claims the oldest outbox row that is due.
    pub async fn claim_outbox(&self, lease_ms: i64) -> Result<Option<OutboxItem>, StoreError> {
        let now = now_ms();
        let claim = match self.backend {
            Backend::Postgres => {
                "UPDATE outbox SET state = 'sending', lease_until_ms = $1, attempts = attempts + 1 WHERE id = \
                 (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_ms <= $2 AND lease_until_ms < $2 ORDER BY next_attempt_ms LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, message_id, idempotency_key, channel, recipient, business_account, text, subject, in_reply_to, attempts, template, tag"
            }
            Backend::Sqlite => {
                "UPDATE outbox SET state = 'sending', lease_until_ms = $1, attempts = attempts + 1 WHERE id = \
                 (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_ms <= $2 AND lease_until_ms < $2 ORDER BY next_attempt_ms LIMIT 1) \
                 RETURNING id, message_id, idempotency_key, channel, recipient, business_account, text, subject, in_reply_to, attempts, template, tag"
            }
        };
        let row: Option<AnyRow> = sqlx::query(claim)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(OutboxItem {
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
        }))
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
    pub async fn mark_send_failure(
        &self,
        item: &OutboxItem,
        error: &str,
        next_attempt_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        match next_attempt_ms {
            Some(next) => {
                sqlx::query("UPDATE outbox SET state = 'pending', next_attempt_ms = $2, lease_until_ms = 0, last_error = $3 WHERE id = $1")
                    .bind(&item.id)
                    .bind(next)
                    .bind(error)
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
