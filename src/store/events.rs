//! The event log: one row per change the inbox must show (a message stored, a
//! delivery state moved, a queue item opened or closed, an owner change, a note,
//! a read mark, a knowledge reload). It lives in the store, so every replica
//! streams the same events to its browsers, and a client that reconnects with
//! `Last-Event-ID` gets everything it missed. Events are written in the same
//! transaction as the change they describe.

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredEvent {
    pub id: i64,
    pub kind: String,
    pub conversation_id: Option<String>,
    pub created_ms: i64,
}

/// Appends an event inside the caller's transaction.
pub(super) async fn record_in(
    connection: &mut sqlx::AnyConnection,
    kind: &str,
    conversation_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO events (kind, conversation_id, created_ms) VALUES ($1, $2, $3)")
        .bind(kind)
        .bind(conversation_id.map(str::to_string))
        .bind(now_ms())
        .execute(connection)
        .await?;
    Ok(())
}

impl Store {
    /// Appends an event on its own (e.g. `knowledge` after a reload).
    pub async fn record_event(
        &self,
        kind: &str,
        conversation_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        record_in(&mut connection, kind, conversation_id).await
    }

    /// The newest event id (0 when the log is empty).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS n FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Events after `after_id`, oldest first.
    ///
    /// On PostgreSQL ids come from a sequence and commit out of order: id 7 may
    /// become visible after id 8. A reader that jumped past 7 would never see
    /// it, so this returns only the run of consecutive ids after `after_id`,
    /// and steps over a gap only once the event after it is old enough that the
    /// missing id must belong to a transaction that rolled back.
    pub async fn events_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        const GAP_GRACE_MS: i64 = 2_000;
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT id, kind, conversation_id, created_ms FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let now = now_ms();
        let mut events = Vec::with_capacity(rows.len());
        let mut expected = after_id + 1;
        for row in &rows {
            let event = StoredEvent {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                conversation_id: row.try_get("conversation_id")?,
                created_ms: row.try_get("created_ms")?,
            };
            if event.id != expected && now - event.created_ms < GAP_GRACE_MS {
                break;
            }
            expected = event.id + 1;
            events.push(event);
        }
        Ok(events)
    }

    /// Forgets events older than `before_ms` (the log is for live views, not history).
    pub async fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM events WHERE created_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
