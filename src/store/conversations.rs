//! Reading conversations and their messages, and who owns them.

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

impl Store {
    /// A person takes a conversation over: the bot writes nothing more to it.
    pub async fn take_over(&self, conversation_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed =
            sqlx::query("UPDATE conversations SET owner = 'human', updated_ms = $2 WHERE id = $1")
                .bind(conversation_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        if changed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "conversation {conversation_id}"
            )));
        }
        events::record_in(&mut tx, "owner", Some(conversation_id)).await?;
        tx.commit().await?;
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
