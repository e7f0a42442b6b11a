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

mod accounts;
mod attachments;
mod backup;
mod batch;
mod contacts;
mod conversations;
pub mod events;
mod forms;
mod inbox;
mod ingest;
mod ingest_rows;
mod ingest_sqlite;
mod jobs;
mod outbox;
mod queue;
mod replay;
mod retention;
mod schema;
mod unknown_sends;

use crate::channels::{DeliveryState, InboundMessage, StatusUpdate};
use crate::domain::{Action, Channel, Reason, Speaker, Turn};
pub use accounts::Session;
pub use attachments::{Attachment, NewAttachment, Settled};
pub use batch::{BatchItem, IngestWriter, MAX_BATCH};
pub use contacts::{
    contact_search_pattern, AttachmentRecord, ContactMatch, ContactRecord, ConversationRecord,
    FormRecord, MessageRecord, PersonData, Purged, QueueRecord,
};
pub use events::StoredEvent;
pub use forms::FormWrite;
pub use inbox::{ConversationSummary, HumanReply, InboxMessage, Note, View};
pub use outbox::OutboxRecord;
pub use replay::replay_key;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::time::{SystemTime, UNIX_EPOCH};
pub use unknown_sends::UnknownSend;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("store unavailable: {0}")]
    Unavailable(&'static str),
}

/// What a commit survives (`[store] durability`). Acknowledged messages are
/// committed either way; this says what may undo a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// A commit survives a power loss or an OS crash: SQLite fsyncs the WAL
    /// on every commit (`synchronous=FULL`, one fsync per group commit);
    /// PostgreSQL commits as configured on the server (`synchronous_commit`).
    #[default]
    PowerSafe,
    /// A commit survives our process being killed, not the machine losing
    /// power: SQLite `synchronous=NORMAL` (the WAL is fsynced at checkpoints
    /// only), PostgreSQL `synchronous_commit=off` for our sessions. A power
    /// loss or OS crash can lose the last acknowledged messages (SQLite: those
    /// since the last checkpoint; PostgreSQL: up to about 3 × `wal_writer_delay`);
    /// the providers will not resend them, since they were acknowledged.
    ProcessCrash,
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

/// A fresh id: 32 hex digits, the creation time in ms (48 bits) then 80
/// random bits. Ids made later sort later, so a batch's new rows land in the
/// last pages of each primary-key B-tree instead of one random page per row:
/// a SQLite commit then writes a few pages to the WAL, not hundreds. The
/// random part keeps ids made in the same millisecond, by any replica, apart.
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut first = std::collections::hash_map::RandomState::new().build_hasher();
    first.write_u128(now.as_nanos());
    let mut second = std::collections::hash_map::RandomState::new().build_hasher();
    second.write_u32(std::process::id());
    let millis = (now.as_millis() as u64) & 0xffff_ffff_ffff;
    format!(
        "{millis:012x}{:016x}{:04x}",
        first.finish(),
        second.finish() & 0xffff
    )
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
    /// The conversation's form state after this reply (same transaction).
    pub form: FormWrite,
    /// Collected form fields (JSON object) for the queue item of an escalation.
    pub fields: Option<String>,
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
    /// A WhatsApp template to send instead of free text (JSON: name, language, parameters).
    pub template: Option<String>,
    /// A Messenger message tag (`HUMAN_AGENT` for a person's reply after 24 hours).
    pub tag: Option<String>,
    /// Set when an earlier attempt may have reached the provider: when that
    /// attempt began (ms). The provider is asked before sending again.
    pub unconfirmed_since_ms: Option<i64>,
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
    /// Connects (power-safe commits) and applies any pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, Durability::PowerSafe).await
    }

    /// [`Store::connect`] with the commit durability chosen in the settings.
    pub async fn connect_with(url: &str, durability: Durability) -> Result<Store, StoreError> {
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
                    // A file that is open needs no ping before each use (a
                    // round trip to the connection's thread per acquire).
                    .test_before_acquire(false)
                    .after_connect(move |connection, _| {
                        Box::pin(async move {
                            // WAL + FULL: each commit fsyncs the WAL, so an
                            // acknowledged message survives a power loss; NORMAL
                            // only a crash of the process (see `Durability`).
                            connection.execute("PRAGMA journal_mode=WAL").await?;
                            connection
                                .execute(match durability {
                                    Durability::PowerSafe => "PRAGMA synchronous=FULL",
                                    Durability::ProcessCrash => "PRAGMA synchronous=NORMAL",
                                })
                                .await?;
                            connection.execute("PRAGMA busy_timeout=5000").await?;
                            connection.execute("PRAGMA foreign_keys=ON").await?;
                            Ok(())
                        })
                    })
                    // A COMMIT that fails (disk full) can leave SQLite inside the
                    // transaction while sqlx counts it differently; the next
                    // "transaction" would then be a savepoint inside one that never
                    // commits, and its "commit" would answer a webhook 200 with
                    // nothing on disk. A connection that comes back still inside a
                    // transaction, by sqlx's count or SQLite's, is closed instead
                    // (closing rolls back); the pool opens a fresh one.
                    .after_release(|connection, _| {
                        Box::pin(async move {
                            if sqlx::Connection::is_in_transaction(connection) {
                                tracing::warn!("a SQLite connection came back inside a transaction; closing it");
                                return Ok(false);
                            }
                            // BEGIN fails inside a transaction; outside one it and its
                            // ROLLBACK touch no page. One command, one round trip to
                            // the connection's thread: the next batch waits for it.
                            if connection.execute("BEGIN; ROLLBACK").await.is_err() {
                                tracing::warn!("a SQLite connection was left inside a transaction; closing it");
                                return Ok(false);
                            }
                            Ok(true)
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    // A database that is down answers 503 soon, not after 30 s.
                    .acquire_timeout(std::time::Duration::from_secs(5))
                    .after_connect(move |connection, _| {
                        Box::pin(async move {
                            if durability == Durability::ProcessCrash {
                                connection.execute("SET synchronous_commit = off").await?;
                            }
                            Ok(())
                        })
                    })
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

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
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
            "attachments",
            "form_states",
            "webhook_tokens",
            "events",
            "notes",
            "alerts",
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
