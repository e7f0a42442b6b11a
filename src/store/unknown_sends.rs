//! Sends whose outcome was unknown, settled by what the provider says later.
//!
//! A reply cut between our request and the provider's answer is handed to a
//! person as `unknown` (`outbox::hand_over`). WhatsApp echoes the outbox id
//! each send carried (`biz_opaque_callback_data`) in the statuses of the
//! message, so a status naming an `unknown` row tells us what became of it:
//! sent, delivered or read settles it as sent and takes the hand-over back;
//! failed records the failure and leaves the hand-over open. Only rows still
//! `unknown` are touched here; a status for any other row goes the ordinary
//! way (`Store::apply_status`, by the provider's message id).

use super::outbox::UNKNOWN_SUMMARY_PREFIX;
use super::*;
use sqlx::Row;

/// What a status did to the send it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSend {
    /// The status names no `unknown` row (no callback data, another row's
    /// state, another channel's row, or a provider id already matched to
    /// another send): apply it as an ordinary status.
    NotUnknown,
    /// Settled as sent; its `delivery_unknown` item is closed, and
    /// `handed_back` says whether the conversation went back to the bot.
    Sent { handed_back: bool },
    /// Settled as failed; the hand-over stays open for a person to answer.
    Failed,
}

impl Store {
    /// Settles the `unknown` outbox row `update.outbox_id` names, in one
    /// transaction: the row and its reply message take the provider's id and
    /// state; for a success the open `delivery_unknown` item of the reply is
    /// resolved, and the conversation goes back to the bot unless another
    /// item is still open for it or a person has written in it since the
    /// hand-over (then it stays with the person).
    pub async fn settle_unknown_send(
        &self,
        update: &StatusUpdate,
    ) -> Result<UnknownSend, StoreError> {
        let Some(outbox_id) = update.outbox_id.as_deref() else {
            return Ok(UnknownSend::NotUnknown);
        };
        let failed = update.state == DeliveryState::Failed;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // A wamid already ours belongs to another send: never take it for this one.
        let settled = sqlx::query(
            "UPDATE outbox SET state = $3, provider_message_id = $4, lease_until_ms = 0, last_error = COALESCE($5, last_error) \
             WHERE id = $1 AND state = 'unknown' AND channel = $2 \
             AND NOT EXISTS (SELECT 1 FROM outbox other WHERE other.provider_message_id = $4 AND other.id <> $1) \
             RETURNING message_id",
        )
        .bind(outbox_id)
        .bind(update.channel.as_str())
        .bind(if failed { "failed" } else { "sent" })
        .bind(&update.provider_message_id)
        .bind(update.error.clone())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(settled) = settled else {
            tx.rollback().await?;
            return Ok(UnknownSend::NotUnknown);
        };
        let reply_id: String = settled.try_get("message_id")?;
        let reply = sqlx::query(
            "UPDATE messages SET status = $2, provider_message_id = $3, error = COALESCE($4, error), updated_ms = $5 \
             WHERE id = $1 RETURNING conversation_id, reply_to",
        )
        .bind(&reply_id)
        .bind(update.state.as_str())
        .bind(&update.provider_message_id)
        .bind(update.error.clone())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let conversation_id: String = reply.try_get("conversation_id")?;
        // The hand-over's queue item is keyed as `hand_over` keyed it.
        let queue_key = reply
            .try_get::<Option<String>, _>("reply_to")?
            .unwrap_or_else(|| reply_id.clone());
        events::record_in(&mut tx, "status", Some(&conversation_id)).await?;
        let outcome = if failed {
            note_failure(&mut tx, &queue_key, update.error.as_deref()).await?;
            UnknownSend::Failed
        } else {
            let handed_back = close_hand_over(&mut tx, &conversation_id, &queue_key, now).await?;
            UnknownSend::Sent { handed_back }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

/// Resolves the open `delivery_unknown` item keyed `queue_key` and, when it
/// was the conversation's last open item and no person has written since it
/// opened, gives the conversation back to the bot. True when it did.
async fn close_hand_over(
    connection: &mut sqlx::AnyConnection,
    conversation_id: &str,
    queue_key: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let closed = sqlx::query(
        "UPDATE queue_items SET state = 'resolved', resolved_ms = $2 \
         WHERE message_id = $1 AND reason = 'delivery_unknown' AND state = 'open' RETURNING created_ms",
    )
    .bind(queue_key)
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    // No item of ours (the hand-over found the message already escalated, or
    // a person resolved it): whoever owns the conversation keeps it.
    let Some(closed) = closed else {
        return Ok(false);
    };
    let handed_over_ms: i64 = closed.try_get("created_ms")?;
    events::record_in(connection, "queue", Some(conversation_id)).await?;
    let still_open: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM queue_items WHERE conversation_id = $1 AND state = 'open'",
    )
    .bind(conversation_id)
    .fetch_one(&mut *connection)
    .await?
    .try_get("n")?;
    // A person's reply from the inbox, or one written in the provider's own app (an echo).
    let person_wrote: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = $1 AND direction = 'out' \
         AND author <> 'bot' AND created_ms >= $2",
    )
    .bind(conversation_id)
    .bind(handed_over_ms)
    .fetch_one(&mut *connection)
    .await?
    .try_get("n")?;
    if still_open > 0 || person_wrote > 0 {
        return Ok(false);
    }
    let handed_back = sqlx::query(
        "UPDATE conversations SET owner = 'bot', status = 'open', updated_ms = $2 WHERE id = $1 AND owner = 'human'",
    )
    .bind(conversation_id)
    .bind(now)
    .execute(&mut *connection)
    .await?
    .rows_affected()
        > 0;
    if handed_back {
        events::record_in(connection, "owner", Some(conversation_id)).await?;
    }
    Ok(handed_back)
}

/// The open hand-over now says the reply did not reach the customer, and why.
async fn note_failure(
    connection: &mut sqlx::AnyConnection,
    queue_key: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let item = sqlx::query(
        "SELECT id, summary FROM queue_items WHERE message_id = $1 AND reason = 'delivery_unknown' AND state = 'open'",
    )
    .bind(queue_key)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(item) = item else {
        return Ok(());
    };
    let summary: String = item.try_get("summary")?;
    let message = summary
        .strip_prefix(UNKNOWN_SUMMARY_PREFIX)
        .unwrap_or(&summary);
    let why: String = error
        .unwrap_or("the provider reported it failed")
        .chars()
        .take(200)
        .collect();
    sqlx::query("UPDATE queue_items SET summary = $2 WHERE id = $1")
        .bind(item.try_get::<String, _>("id")?)
        .bind(format!(
            "reply did not reach the customer ({why}): {message}"
        ))
        .execute(&mut *connection)
        .await?;
    Ok(())
}
