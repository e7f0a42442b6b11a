//! The answer queue: claiming a stored message under a lease, the history the
//! assistant sees, and completing it with the bot's reply in the transaction
//! that checks the bot still owns the conversation.

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

impl Store {
    /// Claims the oldest pending job whose lease has expired.
    pub async fn claim_job(&self, worker: &str, lease_ms: i64) -> Result<Option<Job>, StoreError> {
        let now = now_ms();
        let claim = match self.backend {
            Backend::Postgres => {
                "UPDATE jobs SET lease_owner = $1, lease_until_ms = $2, attempts = attempts + 1 WHERE message_id = \
                 (SELECT message_id FROM jobs WHERE state = 'pending' AND lease_until_ms < $3 ORDER BY created_ms LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING message_id, attempts"
            }
            Backend::Sqlite => {
                "UPDATE jobs SET lease_owner = $1, lease_until_ms = $2, attempts = attempts + 1 WHERE message_id = \
                 (SELECT message_id FROM jobs WHERE state = 'pending' AND lease_until_ms < $3 ORDER BY created_ms LIMIT 1) \
                 RETURNING message_id, attempts"
            }
        };
        let claimed: Option<AnyRow> = sqlx::query(claim)
            .bind(worker)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(claimed) = claimed else {
            return Ok(None);
        };
        let message_id: String = claimed.try_get("message_id")?;
        let attempts: i64 = claimed.try_get("attempts")?;
        let row = sqlx::query(
            "SELECT m.conversation_id, m.channel, m.text, m.subject, m.provider_message_id, m.created_ms, c.business_account, k.address \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN contacts k ON k.id = c.contact_id WHERE m.id = $1",
        )
        .bind(&message_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(Job {
            message_id,
            conversation_id: row.try_get("conversation_id")?,
            channel: channel_of(&row.try_get::<String, _>("channel")?),
            text: row.try_get("text")?,
            subject: row.try_get("subject")?,
            sender: row.try_get("address")?,
            business_account: row.try_get("business_account")?,
            provider_message_id: row.try_get("provider_message_id")?,
            created_ms: row.try_get("created_ms")?,
            attempts,
        }))
    }

    pub async fn owner(&self, conversation_id: &str) -> Result<Owner, StoreError> {
        let row = sqlx::query("SELECT owner FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        let row =
            row.ok_or_else(|| StoreError::NotFound(format!("conversation {conversation_id}")))?;
        Ok(Owner::parse(&row.try_get::<String, _>("owner")?))
    }

    /// Earlier turns of a conversation before a message, oldest first.
    pub async fn history(
        &self,
        conversation_id: &str,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<Turn>, StoreError> {
        let rows = sqlx::query(
            "SELECT direction, text FROM messages WHERE conversation_id = $1 AND created_ms < $2 ORDER BY created_ms DESC LIMIT $3",
        )
        .bind(conversation_id)
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut turns = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let direction: String = row.try_get("direction")?;
            let from = if direction == "in" {
                Speaker::Customer
            } else {
                Speaker::Assistant
            };
            turns.push(Turn {
                from,
                text: row.try_get("text")?,
            });
        }
        Ok(turns)
    }

    /// Stores the bot's reply and its decision, the outbox row and (for an
    /// escalation) the queue item, in one transaction — only if the bot still
    /// owns the conversation. Marks the job done either way.
    pub async fn complete_job(
        &self,
        job: &Job,
        reply: &BotReply,
    ) -> Result<Completion, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let owner_query = match self.backend {
            // Lock the conversation row: a take-over waits for us, or we see it.
            Backend::Postgres => "SELECT owner FROM conversations WHERE id = $1 FOR UPDATE",
            Backend::Sqlite => "SELECT owner FROM conversations WHERE id = $1",
        };
        if self.backend == Backend::Sqlite {
            // Take the write lock first so the owner we read cannot change under us.
            sqlx::query("UPDATE conversations SET updated_ms = updated_ms WHERE id = $1")
                .bind(&job.conversation_id)
                .execute(&mut *tx)
                .await?;
        }
        let owner: String = sqlx::query(owner_query)
            .bind(&job.conversation_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("owner")?;
        let completion = if Owner::parse(&owner) == Owner::Human {
            Completion::Silenced
        } else {
            let reply_id = new_id();
            let sources = serde_json::to_string(&reply.sources).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, direction, author, channel, provider_message_id, text, subject, status, action, reason, confidence, sources, reply_to, created_ms, updated_ms) \
                 VALUES ($1, $2, 'out', 'bot', $3, NULL, $4, $5, 'queued', $6, $7, $8, $9, $10, $11, $11)",
            )
            .bind(&reply_id)
            .bind(&job.conversation_id)
            .bind(job.channel.as_str())
            .bind(&reply.text)
            .bind(job.subject.clone())
            .bind(reply.action.as_str())
            .bind(reply.reason.map(|r| r.as_str().to_string()))
            .bind(reply.confidence as f64)
            .bind(sources)
            .bind(&job.message_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let outbox_id = new_id();
            let inserted: Option<AnyRow> = sqlx::query(
                "INSERT INTO outbox (id, message_id, idempotency_key, channel, recipient, business_account, text, subject, in_reply_to, state, next_attempt_ms, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            )
            .bind(&outbox_id)
            .bind(&reply_id)
            .bind(format!("reply:{}", job.message_id))
            .bind(job.channel.as_str())
            .bind(&job.sender)
            .bind(&job.business_account)
            .bind(&reply.text)
            .bind(job.subject.clone())
            .bind(job.provider_message_id.clone())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if inserted.is_none() {
                // Another worker already answered this message (its lease expired
                // while we were generating): keep theirs, drop ours.
                tx.rollback().await?;
                return Ok(Completion::Silenced);
            }
            if reply.action == Action::Escalate {
                sqlx::query(
                    "INSERT INTO queue_items (id, conversation_id, message_id, reason, priority, summary, state, created_ms, fields) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(new_id())
                .bind(&job.conversation_id)
                .bind(&job.message_id)
                .bind(reply.reason.map(|r| r.as_str()).unwrap_or("low_confidence"))
                .bind(priority_of(reply.reason))
                .bind(job.text.chars().take(280).collect::<String>())
                .bind(now)
                .bind(reply.fields.clone())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE conversations SET owner = 'human', status = 'waiting', updated_ms = $2 WHERE id = $1")
                    .bind(&job.conversation_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            forms::write_in(&mut tx, &job.conversation_id, &reply.form, now).await?;
            events::record_in(&mut tx, "message", Some(&job.conversation_id)).await?;
            if reply.action == Action::Escalate {
                events::record_in(&mut tx, "queue", Some(&job.conversation_id)).await?;
            }
            Completion::Queued { outbox_id }
        };
        sqlx::query("UPDATE jobs SET state = 'done', lease_until_ms = 0 WHERE message_id = $1")
            .bind(&job.message_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(completion)
    }

    /// Closes a job without a reply: a person owns its conversation.
    pub async fn finish_job_silently(&self, job: &Job) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET state = 'done', lease_until_ms = 0 WHERE message_id = $1")
            .bind(&job.message_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives a job back after a failure; it is retried after `retry_in_ms`.
    pub async fn release_job(
        &self,
        job: &Job,
        error: &str,
        retry_in_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET lease_until_ms = $2, last_error = $3 WHERE message_id = $1")
            .bind(&job.message_id)
            .bind(now_ms() + retry_in_ms)
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Leases held right now: (messages claimed by an answer worker or
    /// waiting out a retry, sends in flight). Both are zero after a clean stop.
    pub async fn leases_held(&self) -> Result<(i64, i64), StoreError> {
        let jobs: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM jobs WHERE state = 'pending' AND lease_until_ms > $1",
        )
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let sends: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'sending'")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok((jobs, sends))
    }
}
