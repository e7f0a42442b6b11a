//! Writing what arrives: an inbound message (contact, conversation, message,
//! its attachments and job in one transaction) and the providers' delivery
//! status callbacks.

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

impl Store {
    /// Persists an inbound message (before the webhook is acknowledged).
    pub async fn ingest(&self, message: &InboundMessage) -> Result<Ingested, StoreError> {
        self.ingest_with(message, &[]).await
    }

    /// [`Store::ingest`] with the message's attachments, written in the same
    /// transaction (the text already carries their `[attachment:ID]` markers).
    pub async fn ingest_with(
        &self,
        message: &InboundMessage,
        attachments: &[NewAttachment],
    ) -> Result<Ingested, StoreError> {
        let mut tx = self.pool.begin().await?;
        match ingest_in(&mut tx, message, attachments).await? {
            Written::Done(outcome) => {
                tx.commit().await?;
                Ok(outcome)
            }
            // Another writer stored the same provider id meanwhile.
            Written::Raced => {
                tx.rollback().await?;
                Ok(Ingested::Duplicate)
            }
        }
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
            "SELECT id, status, conversation_id FROM messages WHERE channel = $1 AND provider_message_id = $2",
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
        let conversation_id: String = row.try_get("conversation_id")?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE messages SET status = $2, error = COALESCE($3, error), updated_ms = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(new_state)
        .bind(update.error.clone())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        events::record_in(&mut tx, "status", Some(&conversation_id)).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The same person on WhatsApp and SMS has the same phone number: a new contact
/// on one is linked to the existing contact on the other, so the inbox shows
/// one history. `linked_to` always points at the oldest contact of the group.
async fn link_new_contact(
    connection: &mut sqlx::AnyConnection,
    contact_id: &str,
    channel: Channel,
    address: &str,
) -> Result<(), StoreError> {
    let digits: String = address.chars().filter(char::is_ascii_digit).collect();
    let (other_channel, other_address) = match channel {
        Channel::Whatsapp => ("sms", format!("+{digits}")),
        Channel::Sms => ("whatsapp", digits),
        _ => return Ok(()),
    };
    let other: Option<AnyRow> = sqlx::query(
        "SELECT COALESCE(linked_to, id) AS root FROM contacts WHERE channel = $1 AND address = $2",
    )
    .bind(other_channel)
    .bind(other_address)
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(other) = other {
        let root: String = other.try_get("root")?;
        sqlx::query("UPDATE contacts SET linked_to = $2 WHERE id = $1")
            .bind(contact_id)
            .bind(root)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// What [`ingest_in`] did inside its caller's transaction.
pub(super) enum Written {
    Done(Ingested),
    /// The message's insert met a row another transaction committed after
    /// the duplicate check: the caller must roll back what it wrote.
    Raced,
}

/// An inbound message's rows (contact, conversation, message, attachments,
/// event, job) inside the caller's transaction; the caller commits. Shared by
/// [`Store::ingest_with`] (one message) and the group commit in `batch.rs`.
pub(super) async fn ingest_in(
    tx: &mut sqlx::AnyConnection,
    message: &InboundMessage,
    attachments: &[NewAttachment],
) -> Result<Written, StoreError> {
    let now = now_ms();
    let channel = message.channel.as_str();
    if message.is_echo {
        let own: Option<AnyRow> =
            sqlx::query("SELECT id FROM outbox WHERE channel = $1 AND provider_message_id = $2")
                .bind(channel)
                .bind(&message.provider_message_id)
                .fetch_optional(&mut *tx)
                .await?;
        if own.is_some() {
            return Ok(Written::Done(Ingested::OwnEcho));
        }
    }
    // A provider retry is answered before anything is written, so a batch
    // (store::batch) can hold it beside new messages without touching the
    // contact or conversation; the insert's ON CONFLICT still guards the race.
    let stored: Option<AnyRow> =
        sqlx::query("SELECT id FROM messages WHERE channel = $1 AND provider_message_id = $2")
            .bind(channel)
            .bind(&message.provider_message_id)
            .fetch_optional(&mut *tx)
            .await?;
    if stored.is_some() {
        return Ok(Written::Done(Ingested::Duplicate));
    }
    // Upserts that return the row id: one statement each instead of insert + select.
    let fresh_contact_id = new_id();
    let contact_id: String = sqlx::query(
        "INSERT INTO contacts (id, channel, address, display_name, created_ms) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (channel, address) DO UPDATE SET display_name = COALESCE(excluded.display_name, contacts.display_name) RETURNING id",
    )
    .bind(&fresh_contact_id)
    .bind(channel)
    .bind(&message.sender)
    .bind(message.sender_name.clone())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    if contact_id == fresh_contact_id {
        link_new_contact(tx, &contact_id, message.channel, &message.sender).await?;
    }
    let conversation_id: String = sqlx::query(
        "INSERT INTO conversations (id, contact_id, channel, business_account, owner, status, thread_ref, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, 'bot', 'open', $5, $6, $6) \
         ON CONFLICT (contact_id, channel, business_account) DO UPDATE SET updated_ms = excluded.updated_ms, \
         status = CASE WHEN conversations.status = 'resolved' THEN 'open' ELSE conversations.status END RETURNING id",
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
        "INSERT INTO messages (id, conversation_id, direction, author, channel, provider_message_id, text, subject, status, provider_ms, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (channel, provider_message_id) DO NOTHING RETURNING id",
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
    .bind((message.timestamp_ms > 0).then_some(message.timestamp_ms))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    if inserted.is_none() {
        return Ok(Written::Raced);
    }
    attachments::insert_in(tx, &message_id, &conversation_id, attachments, now).await?;
    events::record_in(tx, "message", Some(&conversation_id)).await?;
    let outcome = if message.is_echo {
        sqlx::query("UPDATE conversations SET owner = 'human', updated_ms = $2 WHERE id = $1")
            .bind(&conversation_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Ingested::HumanReply { conversation_id }
    } else {
        sqlx::query("INSERT INTO jobs (message_id, state, created_ms) VALUES ($1, 'pending', $2)")
            .bind(&message_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Ingested::New {
            message_id,
            conversation_id,
        }
    };
    Ok(Written::Done(outcome))
}
