//! The durable store: contacts, conversations, every message in and out, the
//! processing queue (jobs with leases), the outbox, and the human queue. The
//! ONLY place with SQL. SQLite (one file in the data dir, WAL) by default;
//! PostgreSQL when the URL is `postgres://…`, for many replicas on one database.
//!
//! Invariants kept here, in SQL, so no caller can get them wrong:
//! - a provider message id is stored once per channel (retried webhooks are no-ops);
//! - at most one reply per inbound message (unique idempotency key in the outbox);
//! - the bot's reply is written only while the conversation's owner is the bot,
//!   checked in the same transaction that writes the outbox row.

mod schema;

use crate::channels::{DeliveryState, InboundMessage, StatusUpdate};
use crate::domain::{Action, Channel, Reason, Speaker, Turn};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl(String),
    #[error("not found: {0}")]
    NotFound(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh random id (128 bits, hex).
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut first = std::collections::hash_map::RandomState::new().build_hasher();
    first.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let mut second = std::collections::hash_map::RandomState::new().build_hasher();
    second.write_u32(std::process::id());
    format!("{:016x}{:016x}", first.finish(), second.finish())
}

/// Who may write to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Bot,
    Human,
}

impl Owner {
    fn parse(text: &str) -> Owner {
        if text == "human" {
            Owner::Human
        } else {
            Owner::Bot
        }
    }
}

/// What happened to an inbound webhook message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored and queued for an answer.
    New {
        message_id: String,
        conversation_id: String,
    },
    /// Already stored earlier (a provider retry): nothing to do.
    Duplicate,
    /// A person replied from the provider's own app: stored, and the bot now stays out.
    HumanReply { conversation_id: String },
    /// The provider echoed one of our own sends back.
    OwnEcho,
}

/// One inbound message waiting for the assistant, claimed under a lease.
#[derive(Debug, Clone)]
pub struct Job {
    pub message_id: String,
    pub conversation_id: String,
    pub channel: Channel,
    pub text: String,
    pub subject: Option<String>,
    pub sender: String,
    pub business_account: String,
    pub provider_message_id: Option<String>,
    pub created_ms: i64,
    pub attempts: i64,
}

/// The assistant's answer to a job, to be stored with its decision.
#[derive(Debug, Clone)]
pub struct BotReply {
    pub action: Action,
    pub reason: Option<Reason>,
    pub confidence: f32,
    pub sources: Vec<String>,
    pub text: String,
}

/// What completing a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// A reply is in the outbox (and for an escalation, a queue item is open).
    Queued { outbox_id: String },
    /// A person owns the conversation: the bot wrote nothing.
    Silenced,
}

/// One reply waiting to be sent, claimed under a lease.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: String,
    pub message_id: String,
    pub idempotency_key: String,
    pub channel: Channel,
    pub recipient: String,
    pub business_account: String,
    pub text: String,
    pub subject: Option<String>,
    pub in_reply_to: Option<String>,
    pub attempts: i64,
}

/// An escalation waiting for a person.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueItem {
    pub id: String,
    pub conversation_id: String,
    pub channel: String,
    pub customer: String,
    pub reason: String,
    pub priority: i64,
    pub summary: String,
    pub created_ms: i64,
}

/// One stored message, for history views and tests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredMessage {
    pub id: String,
    pub direction: String,
    pub author: String,
    pub text: String,
    pub status: String,
    pub action: Option<String>,
    pub reason: Option<String>,
    pub sources: Option<String>,
    pub created_ms: i64,
}

/// Priority of a queue item: lower is more urgent.
pub fn priority_of(reason: Option<Reason>) -> i64 {
    match reason {
        Some(Reason::Sensitive) => 0,
        Some(Reason::Complaint) => 1,
        Some(Reason::HighValue) => 2,
        Some(Reason::HumanRequested) => 3,
        _ => 4,
    }
}

fn channel_of(text: &str) -> Channel {
    text.parse().unwrap_or_default()
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    pub backend: Backend,
}

impl Store {
    /// Connects and applies any pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let pool = match backend {
            // One connection: SQLite has one writer anyway, and a single connection
            // never meets "database is locked".
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            // WAL + NORMAL: a committed message survives a crash of
                            // the process (SIGKILL); see ARCHITECTURE.md.
                            connection.execute("PRAGMA journal_mode=WAL").await?;
                            connection.execute("PRAGMA synchronous=NORMAL").await?;
                            connection.execute("PRAGMA busy_timeout=5000").await?;
                            connection.execute("PRAGMA foreign_keys=ON").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .connect(url)
                    .await?
            }
        };
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// `sqlite://<data dir>/frontdesk.db?mode=rwc`
    pub fn sqlite_url(data_dir: &std::path::Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("frontdesk.db").display()
        )
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // Through the pool, not a held connection: SQLite's pool has exactly one.
        sqlx::query("CREATE TABLE IF NOT EXISTS frontdesk_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)")
            .execute(&self.pool)
            .await?;
        let steps = match self.backend {
            Backend::Sqlite => schema::SQLITE,
            Backend::Postgres => schema::POSTGRES,
        };
        for (version, statements) in steps {
            let mut tx = self.pool.begin().await?;
            if self.backend == Backend::Postgres {
                // Two replicas starting together: one migrates, the other waits.
                sqlx::query("SELECT pg_advisory_xact_lock(7470727)")
                    .execute(&mut *tx)
                    .await?;
            }
            let applied: Option<AnyRow> =
                sqlx::query("SELECT version FROM frontdesk_migrations WHERE version = $1")
                    .bind(*version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if applied.is_none() {
                for statement in statements
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "INSERT INTO frontdesk_migrations (version, applied_ms) VALUES ($1, $2)",
                )
                .bind(*version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

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
            tx.commit().await?;
            settled += 1;
        }
        Ok(settled)
    }

    /// Open queue items with a given reason (tests and reports).
    pub async fn count_queue(&self, reason: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM queue_items WHERE reason = $1 AND state = 'open'",
        )
        .bind(reason)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// Persists an inbound message (before the webhook is acknowledged).
    pub async fn ingest(&self, message: &InboundMessage) -> Result<Ingested, StoreError> {
        let now = now_ms();
        let channel = message.channel.as_str();
        let mut tx = self.pool.begin().await?;
        if message.is_echo {
            let own: Option<AnyRow> = sqlx::query(
                "SELECT id FROM outbox WHERE channel = $1 AND provider_message_id = $2",
            )
            .bind(channel)
            .bind(&message.provider_message_id)
            .fetch_optional(&mut *tx)
            .await?;
            if own.is_some() {
                return Ok(Ingested::OwnEcho);
            }
        }
        // Upserts that return the row id: one statement each instead of insert + select.
        let contact_id: String = sqlx::query(
            "INSERT INTO contacts (id, channel, address, display_name, created_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel, address) DO UPDATE SET address = excluded.address RETURNING id",
        )
        .bind(new_id())
        .bind(channel)
        .bind(&message.sender)
        .bind(message.sender_name.clone())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let conversation_id: String = sqlx::query(
            "INSERT INTO conversations (id, contact_id, channel, business_account, owner, status, thread_ref, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, 'bot', 'open', $5, $6, $6) \
             ON CONFLICT (contact_id, channel, business_account) DO UPDATE SET updated_ms = excluded.updated_ms RETURNING id",
        )
        .bind(new_id())
        .bind(&contact_id)
        .bind(channel)
        .bind(&message.business_account)
        .bind(message.thread_ref.clone())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let (direction, author, status) = if message.is_echo {
            ("out", "human", "sent")
        } else {
            ("in", "customer", "received")
        };
        let message_id = new_id();
        let inserted: Option<AnyRow> = sqlx::query(
            "INSERT INTO messages (id, conversation_id, direction, author, channel, provider_message_id, text, subject, status, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (channel, provider_message_id) DO NOTHING RETURNING id",
        )
        .bind(&message_id)
        .bind(&conversation_id)
        .bind(direction)
        .bind(author)
        .bind(channel)
        .bind(&message.provider_message_id)
        .bind(&message.text)
        .bind(message.subject.clone())
        .bind(status)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            tx.rollback().await?;
            return Ok(Ingested::Duplicate);
        }
        let outcome = if message.is_echo {
            sqlx::query("UPDATE conversations SET owner = 'human', updated_ms = $2 WHERE id = $1")
                .bind(&conversation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            Ingested::HumanReply { conversation_id }
        } else {
            sqlx::query(
                "INSERT INTO jobs (message_id, state, created_ms) VALUES ($1, 'pending', $2)",
            )
            .bind(&message_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Ingested::New {
                message_id,
                conversation_id,
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Applies a delivery status callback; states only move forward.
    pub async fn apply_status(&self, update: &StatusUpdate) -> Result<bool, StoreError> {
        let rank = |state: &str| match state {
            "queued" => 0,
            "sent" => 1,
            "delivered" => 2,
            "read" => 3,
            "failed" => 4,
            _ => 0,
        };
        let new_state = update.state.as_str();
        let row: Option<AnyRow> = sqlx::query(
            "SELECT id, status FROM messages WHERE channel = $1 AND provider_message_id = $2",
        )
        .bind(update.channel.as_str())
        .bind(&update.provider_message_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let current: String = row.try_get("status")?;
        if rank(new_state) <= rank(&current) && update.state != DeliveryState::Failed {
            return Ok(false);
        }
        let id: String = row.try_get("id")?;
        sqlx::query("UPDATE messages SET status = $2, updated_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(new_state)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

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
                    "INSERT INTO queue_items (id, conversation_id, message_id, reason, priority, summary, state, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'open', $7) ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(new_id())
                .bind(&job.conversation_id)
                .bind(&job.message_id)
                .bind(reply.reason.map(|r| r.as_str()).unwrap_or("low_confidence"))
                .bind(priority_of(reply.reason))
                .bind(job.text.chars().take(280).collect::<String>())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE conversations SET owner = 'human', status = 'waiting', updated_ms = $2 WHERE id = $1")
                    .bind(&job.conversation_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
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

    /// Claims the oldest outbox row that is due.
    pub async fn claim_outbox(&self, lease_ms: i64) -> Result<Option<OutboxItem>, StoreError> {
        let now = now_ms();
        let claim = match self.backend {
            Backend::Postgres => {
                "UPDATE outbox SET state = 'sending', lease_until_ms = $1, attempts = attempts + 1 WHERE id = \
                 (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_ms <= $2 AND lease_until_ms < $2 ORDER BY next_attempt_ms LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, message_id, idempotency_key, channel, recipient, business_account, text, subject, in_reply_to, attempts"
            }
            Backend::Sqlite => {
                "UPDATE outbox SET state = 'sending', lease_until_ms = $1, attempts = attempts + 1 WHERE id = \
                 (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_ms <= $2 AND lease_until_ms < $2 ORDER BY next_attempt_ms LIMIT 1) \
                 RETURNING id, message_id, idempotency_key, channel, recipient, business_account, text, subject, in_reply_to, attempts"
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
        sqlx::query("UPDATE messages SET status = 'sent', provider_message_id = $2, updated_ms = $3 WHERE id = $1")
            .bind(&item.message_id)
            .bind(provider_message_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
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
                sqlx::query("UPDATE messages SET status = 'failed', updated_ms = $2 WHERE id = $1")
                    .bind(&item.message_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Open escalations, most urgent first.
    pub async fn open_queue(&self) -> Result<Vec<QueueItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT q.id, q.conversation_id, q.reason, q.priority, q.summary, q.created_ms, c.channel, k.address \
             FROM queue_items q JOIN conversations c ON c.id = q.conversation_id JOIN contacts k ON k.id = c.contact_id \
             WHERE q.state = 'open' ORDER BY q.priority, q.created_ms",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QueueItem {
                    id: row.try_get("id")?,
                    conversation_id: row.try_get("conversation_id")?,
                    channel: row.try_get("channel")?,
                    customer: row.try_get("address")?,
                    reason: row.try_get("reason")?,
                    priority: row.try_get("priority")?,
                    summary: row.try_get("summary")?,
                    created_ms: row.try_get("created_ms")?,
                })
            })
            .collect()
    }

    /// Resolves a queue item; the bot takes the conversation back when no other item is open.
    pub async fn resolve_queue_item(&self, id: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("UPDATE queue_items SET state = 'resolved', resolved_ms = $2 WHERE id = $1 AND state = 'open' RETURNING conversation_id")
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("open queue item {id}")))?;
        let conversation_id: String = row.try_get("conversation_id")?;
        let still_open: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM queue_items WHERE conversation_id = $1 AND state = 'open'",
        )
        .bind(&conversation_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if still_open == 0 {
            sqlx::query("UPDATE conversations SET owner = 'bot', status = 'open', updated_ms = $2 WHERE id = $1")
                .bind(&conversation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A person takes a conversation over: the bot writes nothing more to it.
    pub async fn take_over(&self, conversation_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE conversations SET owner = 'human', updated_ms = $2 WHERE id = $1")
            .bind(conversation_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every message of a conversation, oldest first.
    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, direction, author, text, status, action, reason, sources, created_ms FROM messages WHERE conversation_id = $1 ORDER BY created_ms, direction",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredMessage {
                    id: row.try_get("id")?,
                    direction: row.try_get("direction")?,
                    author: row.try_get("author")?,
                    text: row.try_get("text")?,
                    status: row.try_get("status")?,
                    action: row.try_get("action")?,
                    reason: row.try_get("reason")?,
                    sources: row.try_get("sources")?,
                    created_ms: row.try_get("created_ms")?,
                })
            })
            .collect()
    }

    /// Counts for /metrics and tests: (pending jobs, pending outbox, open queue items).
    pub async fn depths(&self) -> Result<(i64, i64, i64), StoreError> {
        let count = |sql: &'static str| async move {
            sqlx::query(sql)
                .fetch_one(&self.pool)
                .await?
                .try_get::<i64, _>("n")
        };
        Ok((
            count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'pending'").await?,
            count("SELECT COUNT(*) AS n FROM outbox WHERE state IN ('pending', 'sending')").await?,
            count("SELECT COUNT(*) AS n FROM queue_items WHERE state = 'open'").await?,
        ))
    }

    /// Messages in one direction ("in" or "out").
    pub async fn count_messages(&self, direction: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE direction = $1")
                .bind(direction)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    /// Deletes every row (tests on a shared PostgreSQL database).
    pub async fn wipe(&self) -> Result<(), StoreError> {
        for table in [
            "queue_items",
            "outbox",
            "jobs",
            "messages",
            "conversations",
            "contacts",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

fn stored_message(row: &AnyRow) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        id: row.try_get("id")?,
        direction: row.try_get("direction")?,
        author: row.try_get("author")?,
        text: row.try_get("text")?,
        status: row.try_get("status")?,
        action: row.try_get("action")?,
        reason: row.try_get("reason")?,
        sources: row.try_get("sources")?,
        created_ms: row.try_get("created_ms")?,
    })
}

/// Lookups the web chat socket needs (replay, acknowledging a resend, pushing a reply).
impl Store {
    /// The last `limit` messages of one contact's conversation, oldest first
    /// (ties in the millisecond: inbound before outbound, then by id).
    pub async fn recent_conversation_messages(
        &self,
        channel: Channel,
        address: &str,
        business_account: &str,
        limit: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.direction, m.author, m.text, m.status, m.action, m.reason, m.sources, m.created_ms \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN contacts k ON k.id = c.contact_id \
             WHERE k.channel = $1 AND k.address = $2 AND c.channel = $1 AND c.business_account = $3 \
             ORDER BY m.created_ms DESC, m.direction DESC, m.id DESC LIMIT $4",
        )
        .bind(channel.as_str())
        .bind(address)
        .bind(business_account)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().rev().map(stored_message).collect()
    }

    /// The id of the message stored under a provider's message id, if any.
    pub async fn message_id_by_provider_id(
        &self,
        channel: Channel,
        provider_message_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<AnyRow> =
            sqlx::query("SELECT id FROM messages WHERE channel = $1 AND provider_message_id = $2")
                .bind(channel.as_str())
                .bind(provider_message_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }

    /// The stored reply an outbox row carries, found by its idempotency key.
    pub async fn outbox_message(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let row: Option<AnyRow> = sqlx::query(
            "SELECT m.id, m.direction, m.author, m.text, m.status, m.action, m.reason, m.sources, m.created_ms \
             FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.idempotency_key = $1",
        )
        .bind(idempotency_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_message).transpose()
    }
}

impl Store {
    /// The conversation id of a customer address (tests and the CLI).
    pub async fn conversation_of(&self, address: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.address = $1")
            .bind(address)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("id"))
            .transpose()
            .map_err(StoreError::from)
    }
}
