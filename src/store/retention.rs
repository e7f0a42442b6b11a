//! Retention: forgetting conversations nobody has touched for a while. A
//! conversation expires when it was last updated before the cutoff and has no
//! message or note since; one with an open queue item is kept whatever its age
//! (a person still owes the customer an answer). An expired conversation goes
//! with every row that holds its data (`contacts::purge_conversation_in`), and
//! a contact left with no conversation goes too. Photo files are the caller's.

use super::contacts::{purge_conversation_in, Purged};
use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

/// Conversations deleted per transaction, so a first pass over years of
/// history never holds the write lock for long.
const BATCH: i64 = 100;

const EXPIRED: &str = "SELECT c.id FROM conversations c WHERE c.updated_ms < $1 \
     AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.created_ms >= $1) \
     AND NOT EXISTS (SELECT 1 FROM notes n WHERE n.conversation_id = c.id AND n.created_ms >= $1) \
     AND NOT EXISTS (SELECT 1 FROM queue_items q WHERE q.conversation_id = c.id AND q.state = 'open')";

impl Store {
    /// How many conversations [`Store::apply_retention`] would delete now.
    pub async fn count_expired(&self, cutoff_ms: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM ({EXPIRED}) expired"
        )))
        .bind(cutoff_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Deletes every conversation whose last activity is before `cutoff_ms`
    /// (none with an open queue item), in batches of one transaction each.
    pub async fn apply_retention(&self, cutoff_ms: i64) -> Result<Purged, StoreError> {
        let mut total = Purged::default();
        loop {
            let (batch, selected) = self.retention_batch(cutoff_ms).await?;
            total.add(batch);
            if selected < BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// One transaction: up to [`BATCH`] expired conversations; also returns
    /// how many were selected (fewer than a batch: nothing is left).
    async fn retention_batch(&self, cutoff_ms: i64) -> Result<(Purged, usize), StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{EXPIRED} ORDER BY c.updated_ms, c.id LIMIT $2"
        )))
        .bind(cutoff_ms)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut purged = Purged::default();
        for row in &rows {
            let conversation_id: String = row.try_get("id")?;
            // Lock the row and check it again: a message stored since the
            // select above updated it, and then it stays.
            let still_expired: Option<AnyRow> = sqlx::query(
                "UPDATE conversations SET updated_ms = updated_ms WHERE id = $1 AND updated_ms < $2 RETURNING contact_id",
            )
            .bind(&conversation_id)
            .bind(cutoff_ms)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(locked) = still_expired else {
                continue;
            };
            let contact_id: String = locked.try_get("contact_id")?;
            purged.add(purge_conversation_in(&mut tx, &conversation_id).await?);
            purged.contacts += sqlx::query(
                "DELETE FROM contacts WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.contact_id = $1)",
            )
            .bind(&contact_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok((purged, rows.len()))
    }
}
