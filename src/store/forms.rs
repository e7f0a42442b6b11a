//! Form state per conversation (migration 3): the form being collected and
//! its JSON state (each field's value and status, the field being asked), so
//! a form survives restarts and any replica can take the next message. The
//! state is written by `complete_job` in the transaction of the reply; the
//! JSON is the assistant's (`assistant::forms::FormState`), opaque here.

use super::*;
use sqlx::Row;
use std::collections::HashMap;

/// What `complete_job` does with a conversation's form state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FormWrite {
    /// Leave whatever is stored (no forms involved).
    #[default]
    Keep,
    /// Store this state for the conversation.
    Save { form: String, state: String },
    /// No form in progress any more.
    Clear,
}

impl Store {
    /// The stored form state of a conversation: (form name, state JSON).
    pub async fn form_state(
        &self,
        conversation_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT form, state FROM form_states WHERE conversation_id = $1")
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((row.try_get("form")?, row.try_get("state")?)))
            .transpose()
    }

    /// The fields (JSON text) of every open queue item that has them, by item id.
    pub async fn open_queue_fields(&self) -> Result<HashMap<String, String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, fields FROM queue_items WHERE state = 'open' AND fields IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("fields")?)))
            .collect()
    }
}

/// Applies a [`FormWrite`] inside the caller's transaction.
pub(super) async fn write_in(
    connection: &mut sqlx::AnyConnection,
    conversation_id: &str,
    write: &FormWrite,
    now: i64,
) -> Result<(), StoreError> {
    match write {
        FormWrite::Keep => {}
        FormWrite::Clear => {
            sqlx::query("DELETE FROM form_states WHERE conversation_id = $1")
                .bind(conversation_id)
                .execute(&mut *connection)
                .await?;
        }
        FormWrite::Save { form, state } => {
            sqlx::query(
                "INSERT INTO form_states (conversation_id, form, state, updated_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (conversation_id) DO UPDATE SET form = excluded.form, state = excluded.state, updated_ms = excluded.updated_ms",
            )
            .bind(conversation_id)
            .bind(form)
            .bind(state)
            .bind(now)
            .execute(&mut *connection)
            .await?;
        }
    }
    Ok(())
}
