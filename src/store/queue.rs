//! The human queue: open escalations, resolving them, counts for reports.

use super::*;
use sqlx::Row;

/// The columns [`queue_item_of`] reads, with the joins that give them.
pub(super) const QUEUE_ITEM_SELECT: &str = "SELECT q.id, q.conversation_id, q.reason, q.priority, q.summary, q.created_ms, c.channel, k.address \
     FROM queue_items q JOIN conversations c ON c.id = q.conversation_id JOIN contacts k ON k.id = c.contact_id";

pub(super) fn queue_item_of(row: &sqlx::any::AnyRow) -> Result<QueueItem, StoreError> {
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
}

impl Store {
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
}

impl Store {
    /// Open escalations, most urgent first.
    pub async fn open_queue(&self) -> Result<Vec<QueueItem>, StoreError> {
        let sql =
            format!("{QUEUE_ITEM_SELECT} WHERE q.state = 'open' ORDER BY q.priority, q.created_ms");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(queue_item_of).collect()
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
        events::record_in(&mut tx, "queue", Some(&conversation_id)).await?;
        tx.commit().await?;
        Ok(())
    }
}
