//! The pictures customers send: one row per attachment, written with its
//! message in `ingest`'s transaction, then settled (`stored` or `failed`, with
//! the reason in plain words) once the bytes are fetched and checked. The
//! bytes themselves live in the data dir (`crate::attachments`); this module
//! only keeps what is known about them.

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

/// An attachment about to be stored with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub id: String,
    /// `whatsapp_media`, `meta_url`, `twilio_url` or `inline`.
    pub source_kind: String,
    /// The media id or URL (empty for inline bytes).
    pub source_ref: String,
    /// What the provider said it is.
    pub declared_type: Option<String>,
    /// Known at ingest for inline bytes (already checked and written).
    pub settled: Option<Settled>,
}

/// How an attachment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Stored { content_type: String, size: i64 },
    Failed { error: String },
}

/// One attachment as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: String,
    #[serde(skip)]
    pub message_id: String,
    #[serde(skip)]
    pub conversation_id: String,
    #[serde(skip)]
    pub source_kind: String,
    #[serde(skip)]
    pub source_ref: String,
    #[serde(skip)]
    pub declared_type: Option<String>,
    /// The checked type of the stored bytes (`image/jpeg` …); the declared
    /// one until then.
    pub content_type: Option<String>,
    /// Bytes, once stored.
    pub size: Option<i64>,
    /// `pending`, `stored` or `failed`.
    pub status: String,
    /// Why it was not kept, in plain words.
    pub error: Option<String>,
    #[serde(skip)]
    pub created_ms: i64,
}

impl Attachment {
    pub fn is_stored(&self) -> bool {
        self.status == "stored"
    }
}

fn attachment(row: &AnyRow) -> Result<Attachment, StoreError> {
    let declared_type: Option<String> = row.try_get("declared_type")?;
    let content_type: Option<String> = row.try_get("content_type")?;
    Ok(Attachment {
        id: row.try_get("id")?,
        message_id: row.try_get("message_id")?,
        conversation_id: row.try_get("conversation_id")?,
        source_kind: row.try_get("source_kind")?,
        source_ref: row.try_get("source_ref")?,
        content_type: content_type.or_else(|| declared_type.clone()),
        declared_type,
        size: row.try_get("size")?,
        status: row.try_get("status")?,
        error: row.try_get("error")?,
        created_ms: row.try_get("created_ms")?,
    })
}

const COLUMNS: &str = "a.id, a.message_id, a.conversation_id, a.source_kind, a.source_ref, \
     a.declared_type, a.content_type, a.size, a.status, a.error, a.created_ms";

/// Inserts a message's attachments inside `ingest`'s transaction.
pub(super) async fn insert_in(
    connection: &mut sqlx::AnyConnection,
    message_id: &str,
    conversation_id: &str,
    attachments: &[NewAttachment],
    now: i64,
) -> Result<(), StoreError> {
    for (position, new) in attachments.iter().enumerate() {
        let (status, content_type, size, error) = match &new.settled {
            None => ("pending", None, None, None),
            Some(Settled::Stored { content_type, size }) => {
                ("stored", Some(content_type.clone()), Some(*size), None)
            }
            Some(Settled::Failed { error }) => ("failed", None, None, Some(error.clone())),
        };
        sqlx::query(
            "INSERT INTO attachments (id, message_id, conversation_id, position, source_kind, source_ref, declared_type, content_type, size, status, error, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        )
        .bind(&new.id)
        .bind(message_id)
        .bind(conversation_id)
        .bind(position as i64)
        .bind(&new.source_kind)
        .bind(&new.source_ref)
        .bind(new.declared_type.clone())
        .bind(content_type)
        .bind(size)
        .bind(status)
        .bind(error)
        .bind(now)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

impl Store {
    /// One attachment by id.
    pub async fn attachment(&self, id: &str) -> Result<Option<Attachment>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM attachments a WHERE a.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(attachment).transpose()
    }

    /// A message's attachments, in the order they were sent.
    pub async fn message_attachments(
        &self,
        message_id: &str,
    ) -> Result<Vec<Attachment>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM attachments a WHERE a.message_id = $1 ORDER BY a.created_ms, a.position, a.id"
        )))
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attachment).collect()
    }

    /// Every attachment in a conversation's history across linked contacts
    /// (what the inbox shows next to the messages).
    pub async fn conversation_attachments(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<Attachment>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM attachments a JOIN conversations c ON c.id = a.conversation_id JOIN contacts k ON k.id = c.contact_id \
             WHERE COALESCE(k.linked_to, k.id) = (SELECT COALESCE(k2.linked_to, k2.id) FROM conversations c2 JOIN contacts k2 ON k2.id = c2.contact_id WHERE c2.id = $1) \
             ORDER BY a.created_ms, a.position, a.id"
        )))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attachment).collect()
    }

    /// Records how a pending attachment ended, with a `message` event so the
    /// inbox shows the photo (or why there is none). A settled one is left as
    /// it is; returns whether this call settled it.
    pub async fn settle_attachment(&self, id: &str, settled: &Settled) -> Result<bool, StoreError> {
        let (status, content_type, size, error) = match settled {
            Settled::Stored { content_type, size } => {
                ("stored", Some(content_type.clone()), Some(*size), None)
            }
            Settled::Failed { error } => ("failed", None, None, Some(error.clone())),
        };
        let mut tx = self.pool.begin().await?;
        let updated: Option<AnyRow> = sqlx::query(
            "UPDATE attachments SET status = $2, content_type = COALESCE($3, content_type), size = $4, error = $5, updated_ms = $6 \
             WHERE id = $1 AND status = 'pending' RETURNING conversation_id",
        )
        .bind(id)
        .bind(status)
        .bind(content_type)
        .bind(size)
        .bind(error)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = updated else {
            tx.rollback().await?;
            return Ok(false);
        };
        let conversation_id: String = row.try_get("conversation_id")?;
        events::record_in(&mut tx, "message", Some(&conversation_id)).await?;
        tx.commit().await?;
        Ok(true)
    }
}
