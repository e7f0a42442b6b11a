//! One person's data, for the owner's duty to hand it over or forget it:
//! finding a contact, reading everything stored about a person (export), and
//! erasing it in one transaction. A *person* is a contact together with the
//! contacts linked to it (the same phone number on WhatsApp and SMS, see
//! `ingest::link_new_contact`): the inbox shows them as one history, so export
//! and erasure cover them together. Photo files are not touched here; the
//! caller removes them once the rows are gone (`crate::privacy`).
//!
//! `purge_conversation_in` is the one place that knows every table holding a
//! conversation's data; retention uses it too.

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One contact (one address on one channel).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContactRecord {
    pub id: String,
    pub channel: String,
    pub address: String,
    pub name: Option<String>,
    /// The contact this one is linked to (the oldest of the person's contacts).
    pub linked_to: Option<String>,
    pub created_ms: i64,
}

/// A contact found by `find_contacts`, with how much is stored for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContactMatch {
    #[serde(flatten)]
    pub contact: ContactRecord,
    pub conversations: i64,
    pub messages: i64,
    /// The newest message of the contact, if any.
    pub last_message_ms: Option<i64>,
}

/// Every message, in or out, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MessageRecord {
    pub id: String,
    pub direction: String,
    pub author: String,
    pub channel: String,
    pub provider_message_id: Option<String>,
    pub text: String,
    pub subject: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub action: Option<String>,
    pub reason: Option<String>,
    pub confidence: Option<f64>,
    pub sources: Vec<String>,
    /// When the provider says the customer sent it.
    pub provider_ms: Option<i64>,
    pub created_ms: i64,
}

/// A queue item (an escalation), with the form fields collected for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueRecord {
    pub id: String,
    pub message_id: String,
    pub reason: String,
    pub priority: i64,
    pub summary: String,
    pub state: String,
    pub fields: serde_json::Value,
    pub created_ms: i64,
    pub resolved_ms: Option<i64>,
}

/// The form being collected in a conversation (its captured values included).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FormRecord {
    pub form: String,
    pub state: serde_json::Value,
    pub updated_ms: i64,
}

/// What is known about a photo; its bytes are in the data dir under `id`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttachmentRecord {
    pub id: String,
    pub message_id: String,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    pub status: String,
    pub error: Option<String>,
    pub created_ms: i64,
}

/// One conversation and everything hanging off it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConversationRecord {
    pub id: String,
    pub contact_id: String,
    pub channel: String,
    pub business_account: String,
    pub owner: String,
    pub status: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub messages: Vec<MessageRecord>,
    pub notes: Vec<Note>,
    pub queue_items: Vec<QueueRecord>,
    pub form: Option<FormRecord>,
    pub attachments: Vec<AttachmentRecord>,
}

/// Everything stored about one person.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PersonData {
    pub contacts: Vec<ContactRecord>,
    pub conversations: Vec<ConversationRecord>,
}

/// What an erasure (or a retention pass) removed from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub contacts: u64,
    pub conversations: u64,
    pub messages: u64,
    /// Replies not sent yet that now never will be.
    pub unsent_replies: u64,
    /// The photos whose files the caller must now delete.
    pub attachment_ids: Vec<String>,
}

impl Purged {
    pub(super) fn add(&mut self, other: Purged) {
        self.contacts += other.contacts;
        self.conversations += other.conversations;
        self.messages += other.messages;
        self.unsent_replies += other.unsent_replies;
        self.attachment_ids.extend(other.attachment_ids);
    }
}

const CONTACT_COLUMNS: &str =
    "k.id, k.channel, k.address, k.display_name, k.linked_to, k.created_ms";

fn contact_of(row: &AnyRow) -> Result<ContactRecord, StoreError> {
    Ok(ContactRecord {
        id: row.try_get("id")?,
        channel: row.try_get("channel")?,
        address: row.try_get("address")?,
        name: row.try_get("display_name")?,
        linked_to: row.try_get("linked_to")?,
        created_ms: row.try_get("created_ms")?,
    })
}

/// What a search for a contact compares: a phone number by its digits alone
/// (`+1 (555) 123-4567` finds WhatsApp's `15551234567` and SMS's
/// `+15551234567`), anything else as lowercase text. `None` for a blank query.
pub fn contact_search_pattern(query: &str) -> Option<String> {
    let query = query.trim();
    if query.is_empty() {
        return None;
    }
    let phone_like = query
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    let needle = if phone_like && !digits.is_empty() {
        digits
    } else {
        query.to_lowercase()
    };
    let mut pattern = String::from("%");
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

/// The person's root contact id: every contact of the person has it as
/// `COALESCE(linked_to, id)`.
async fn person_root(
    connection: &mut sqlx::AnyConnection,
    contact_id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<AnyRow> =
        sqlx::query("SELECT COALESCE(linked_to, id) AS root FROM contacts WHERE id = $1")
            .bind(contact_id)
            .fetch_optional(&mut *connection)
            .await?;
    row.map(|row| Ok(row.try_get("root")?)).transpose()
}

/// Deletes one conversation and every row that holds its data, in the
/// caller's transaction: photos' rows, form state, notes, the alert throttle,
/// queue items, the outbox (so an unsent reply is never sent), jobs, events,
/// messages, the conversation. Returns what went, with the photo ids.
pub(super) async fn purge_conversation_in(
    connection: &mut sqlx::AnyConnection,
    conversation_id: &str,
) -> Result<Purged, StoreError> {
    let attachment_ids: Vec<String> =
        sqlx::query("SELECT id FROM attachments WHERE conversation_id = $1 ORDER BY id")
            .bind(conversation_id)
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
    let unsent: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM outbox WHERE state IN ('pending', 'sending') \
         AND message_id IN (SELECT id FROM messages WHERE conversation_id = $1)",
    )
    .bind(conversation_id)
    .fetch_one(&mut *connection)
    .await?
    .try_get("n")?;
    // Children before parents: the foreign keys are enforced on both backends.
    const BY_CONVERSATION: &[&str] = &[
        "DELETE FROM attachments WHERE conversation_id = $1",
        "DELETE FROM form_states WHERE conversation_id = $1",
        "DELETE FROM notes WHERE conversation_id = $1",
        "DELETE FROM alerts WHERE conversation_id = $1",
        "DELETE FROM queue_items WHERE conversation_id = $1",
        "DELETE FROM outbox WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = $1)",
        "DELETE FROM jobs WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = $1)",
        "DELETE FROM events WHERE conversation_id = $1",
    ];
    for statement in BY_CONVERSATION {
        sqlx::query(*statement)
            .bind(conversation_id)
            .execute(&mut *connection)
            .await?;
    }
    let messages = sqlx::query("DELETE FROM messages WHERE conversation_id = $1")
        .bind(conversation_id)
        .execute(&mut *connection)
        .await?
        .rows_affected();
    let conversations = sqlx::query("DELETE FROM conversations WHERE id = $1")
        .bind(conversation_id)
        .execute(&mut *connection)
        .await?
        .rows_affected();
    // Says "this one is gone" to open inboxes; an id, nothing of the person.
    events::record_in(connection, "erased", Some(conversation_id)).await?;
    Ok(Purged {
        contacts: 0,
        conversations,
        messages,
        unsent_replies: unsent as u64,
        attachment_ids,
    })
}

impl Store {
    /// Contacts whose address or name contains `query` (a phone number is
    /// compared by its digits), newest first, at most `limit`.
    pub async fn find_contacts(
        &self,
        query: &str,
        limit: i64,
    ) -> Result<Vec<ContactMatch>, StoreError> {
        let Some(pattern) = contact_search_pattern(query) else {
            return Ok(Vec::new());
        };
        // An exact id matches too, so `find` confirms an id from the API.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS}, \
             (SELECT COUNT(*) FROM conversations c WHERE c.contact_id = k.id) AS conversations, \
             (SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.contact_id = k.id) AS messages, \
             (SELECT MAX(m.created_ms) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.contact_id = k.id) AS last_message_ms \
             FROM contacts k WHERE k.id = $3 OR LOWER(k.address) LIKE $1 ESCAPE '\\' \
             OR LOWER(COALESCE(k.display_name, '')) LIKE $1 ESCAPE '\\' \
             ORDER BY k.created_ms DESC, k.id LIMIT $2"
        )))
        .bind(pattern)
        .bind(limit)
        .bind(query.trim())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ContactMatch {
                    contact: contact_of(row)?,
                    conversations: row.try_get("conversations")?,
                    messages: row.try_get("messages")?,
                    last_message_ms: row.try_get("last_message_ms")?,
                })
            })
            .collect()
    }

    /// Everything stored about the person `contact_id` belongs to (the
    /// contact and those linked to it); `None` for an unknown id.
    pub async fn person_data(&self, contact_id: &str) -> Result<Option<PersonData>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        let Some(root) = person_root(&mut connection, contact_id).await? else {
            return Ok(None);
        };
        let contacts = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts k WHERE COALESCE(k.linked_to, k.id) = $1 ORDER BY k.created_ms, k.id"
        )))
        .bind(&root)
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(contact_of)
        .collect::<Result<Vec<_>, _>>()?;
        let rows = sqlx::query(
            "SELECT c.id, c.contact_id, c.channel, c.business_account, c.owner, c.status, c.created_ms, c.updated_ms \
             FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE COALESCE(k.linked_to, k.id) = $1 \
             ORDER BY c.created_ms, c.id",
        )
        .bind(&root)
        .fetch_all(&mut *connection)
        .await?;
        let mut conversations = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            conversations.push(ConversationRecord {
                contact_id: row.try_get("contact_id")?,
                channel: row.try_get("channel")?,
                business_account: row.try_get("business_account")?,
                owner: row.try_get("owner")?,
                status: row.try_get("status")?,
                created_ms: row.try_get("created_ms")?,
                updated_ms: row.try_get("updated_ms")?,
                messages: conversation_messages(&mut connection, &id).await?,
                notes: conversation_notes(&mut connection, &id).await?,
                queue_items: conversation_queue_items(&mut connection, &id).await?,
                form: conversation_form(&mut connection, &id).await?,
                attachments: conversation_attachment_records(&mut connection, &id).await?,
                id,
            });
        }
        Ok(Some(PersonData {
            contacts,
            conversations,
        }))
    }

    /// Erases the person `contact_id` belongs to, in one transaction: their
    /// contacts (linked ones included), conversations and every row that
    /// holds their data. `None` for an unknown id. The photo files are the
    /// caller's to delete, from `attachment_ids`.
    pub async fn erase_person(&self, contact_id: &str) -> Result<Option<Purged>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(root) = person_root(&mut tx, contact_id).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        // Lock the person's rows first (SQLite: take the write lock), so an
        // ingest or a bot reply for them waits for this transaction to end.
        sqlx::query(
            "UPDATE contacts SET display_name = display_name WHERE COALESCE(linked_to, id) = $1",
        )
        .bind(&root)
        .execute(&mut *tx)
        .await?;
        let conversation_ids: Vec<String> = sqlx::query(
            "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id \
             WHERE COALESCE(k.linked_to, k.id) = $1 ORDER BY c.id",
        )
        .bind(&root)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut purged = Purged::default();
        for conversation_id in &conversation_ids {
            sqlx::query("UPDATE conversations SET updated_ms = updated_ms WHERE id = $1")
                .bind(conversation_id)
                .execute(&mut *tx)
                .await?;
            purged.add(purge_conversation_in(&mut tx, conversation_id).await?);
        }
        purged.contacts = sqlx::query("DELETE FROM contacts WHERE COALESCE(linked_to, id) = $1")
            .bind(&root)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Some(purged))
    }
}

async fn conversation_messages(
    connection: &mut sqlx::AnyConnection,
    conversation_id: &str,
) -> Result<Vec<MessageRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, direction, author, channel, provider_message_id, text, subject, status, error, action, reason, \
         confidence, sources, provider_ms, created_ms FROM messages WHERE conversation_id = $1 ORDER BY created_ms, direction, id",
    )
    .bind(conversation_id)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            let sources: Option<String> = row.try_get("sources")?;
            Ok(MessageRecord {
                id: row.try_get("id")?,
                direction: row.try_get("direction")?,
                author: row.try_get("author")?,
                channel: row.try_get("channel")?,
                provider_message_id: row.try_get("provider_message_id")?,
                text: row.try_get("text")?,
                subject: row.try_get("subject")?,
                status: row.try_get("status")?,
                error: row.try_get("error")?,
                action: row.try_get("action")?,
                reason: row.try_get("reason")?,
                confidence: row.try_get("confidence")?,
                sources: sources
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default(),
                provider_ms: row.try_get("provider_ms")?,
                created_ms: row.try_get("created_ms")?,
            })
        })
        .collect()
}

async fn conversation_notes(
    connection: &mut sqlx::AnyConnection,
    conversation_id: &str,
) -> Result<Vec<Note>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, author, text, created_ms FROM notes WHERE conversation_id = $1 ORDER BY created_ms, id",
    )
    .bind(conversation_id)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Note {
                id: row.try_get("id")?,
                author: row.try_get("author")?,
                text: row.try_get("text")?,
                created_ms: row.try_get("created_ms")?,
            })
        })
        .collect()
}

async fn conversation_queue_items(
    connection: &mut sqlx::AnyConnection,
    conversation_id: &str,
) -> Result<Vec<QueueRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, message_id, reason, priority, summary, state, fields, created_ms, resolved_ms \
         FROM queue_items WHERE conversation_id = $1 ORDER BY created_ms, id",
    )
    .bind(conversation_id)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            let fields: Option<String> = row.try_get("fields")?;
            Ok(QueueRecord {
                id: row.try_get("id")?,
                message_id: row.try_get("message_id")?,
                reason: row.try_get("reason")?,
                priority: row.try_get("priority")?,
                summary: row.try_get("summary")?,
                state: row.try_get("state")?,
                fields: fields
                    .and_then(|f| serde_json::from_str(&f).ok())
                    .unwrap_or_else(|| serde_json::json!({})),
                created_ms: row.try_get("created_ms")?,
                resolved_ms: row.try_get("resolved_ms")?,
            })
        })
        .collect()
}

async fn conversation_form(
    connection: &mut sqlx::AnyConnection,
    conversation_id: &str,
) -> Result<Option<FormRecord>, StoreError> {
    let row: Option<AnyRow> =
        sqlx::query("SELECT form, state, updated_ms FROM form_states WHERE conversation_id = $1")
            .bind(conversation_id)
            .fetch_optional(&mut *connection)
            .await?;
    row.map(|row| {
        let state: String = row.try_get("state")?;
        Ok(FormRecord {
            form: row.try_get("form")?,
            // Opaque to the store; kept as text if it is not JSON.
            state: serde_json::from_str(&state).unwrap_or(serde_json::Value::String(state)),
            updated_ms: row.try_get("updated_ms")?,
        })
    })
    .transpose()
}

async fn conversation_attachment_records(
    connection: &mut sqlx::AnyConnection,
    conversation_id: &str,
) -> Result<Vec<AttachmentRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, message_id, declared_type, content_type, size, status, error, created_ms \
         FROM attachments WHERE conversation_id = $1 ORDER BY created_ms, position, id",
    )
    .bind(conversation_id)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            let declared: Option<String> = row.try_get("declared_type")?;
            let checked: Option<String> = row.try_get("content_type")?;
            Ok(AttachmentRecord {
                id: row.try_get("id")?,
                message_id: row.try_get("message_id")?,
                content_type: checked.or(declared),
                size: row.try_get("size")?,
                status: row.try_get("status")?,
                error: row.try_get("error")?,
                created_ms: row.try_get("created_ms")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_number_is_searched_by_its_digits() {
        assert_eq!(
            contact_search_pattern("+1 (555) 123-4567").as_deref(),
            Some("%15551234567%")
        );
        assert_eq!(
            contact_search_pattern(" Kerry@Example.com ").as_deref(),
            Some("%kerry@example.com%")
        );
        assert_eq!(
            contact_search_pattern("50%_off").as_deref(),
            Some("%50\\%\\_off%")
        );
        assert_eq!(contact_search_pattern("   "), None);
        // Punctuation alone is not a phone number.
        assert_eq!(contact_search_pattern("()").as_deref(), Some("%()%"));
    }
}
