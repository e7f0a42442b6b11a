//! What the owner's inbox reads and writes: conversation lists (needs you, all,
//! search), one conversation's history across linked contacts, notes, read
//! marks, a person's reply (which makes the person the owner in the same
//! transaction), hand-back and resolve, and the owner-alert throttle.

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

/// Which conversations a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Open queue items, oldest wait first.
    NeedsYou,
    /// Every conversation, newest activity first.
    All,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ContactView {
    /// The contact's id: what `frontdesk contact export|erase` and
    /// `/api/contacts/{id}/…` take.
    pub id: String,
    pub name: Option<String>,
    pub address: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LastMessage {
    pub text: String,
    pub direction: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct QueueItemView {
    pub id: String,
    pub reason: String,
    pub priority: i64,
    pub summary: String,
    /// Details collected before the hand-over (custom-order forms), by field name.
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    pub created_ms: i64,
}

/// One row of a conversation list (FORMATS.md §8).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ConversationSummary {
    pub id: String,
    pub channel: String,
    pub contact: ContactView,
    /// `bot` or `human`.
    pub owner: String,
    /// `open`, `waiting` (a person is needed) or `resolved`.
    pub status: String,
    /// When the oldest open queue item was opened.
    pub waiting_since_ms: Option<i64>,
    /// Customer messages since the owner last opened it.
    pub unread: i64,
    pub updated_ms: i64,
    pub last_message: Option<LastMessage>,
    pub queue_item: Option<QueueItemView>,
}

/// One message as the inbox shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct InboxMessage {
    pub id: String,
    /// `in` or `out`.
    pub direction: String,
    /// `customer`, `bot` or `human`.
    pub author: String,
    pub channel: String,
    pub text: String,
    pub status: String,
    /// Why a send failed, in plain words.
    pub error: Option<String>,
    pub created_ms: i64,
    pub action: Option<String>,
    pub reason: Option<String>,
    pub confidence: Option<f64>,
    pub sources: Vec<String>,
    /// The photos the customer sent with it (`[attachment:ID]` in `text`).
    pub attachments: Vec<super::Attachment>,
}

/// An internal note: seen by the team, never sent.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Note {
    pub id: String,
    pub author: String,
    pub text: String,
    pub created_ms: i64,
}

/// A reply written by a person, queued through the outbox.
#[derive(Debug, Clone, Default)]
pub struct HumanReply {
    pub text: String,
    pub author: String,
    /// A WhatsApp template (JSON) instead of free text.
    pub template: Option<String>,
    /// A Messenger message tag (`HUMAN_AGENT`).
    pub tag: Option<String>,
}

/// `%`, `_` and `\` are literal in a search.
fn like_pattern(query: &str) -> String {
    let mut pattern = String::from("%");
    for c in query.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

const SUMMARY_COLUMNS: &str = "SELECT c.id, c.contact_id, c.channel, c.owner, c.status, c.updated_ms, k.display_name, k.address, \
     (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'in' AND m.created_ms > c.read_ms) AS unread, \
     (SELECT MIN(q.created_ms) FROM queue_items q WHERE q.conversation_id = c.id AND q.state = 'open') AS waiting_since_ms, \
     (SELECT m.text FROM messages m WHERE m.conversation_id = c.id ORDER BY m.created_ms DESC, m.direction DESC LIMIT 1) AS last_text, \
     (SELECT m.direction FROM messages m WHERE m.conversation_id = c.id ORDER BY m.created_ms DESC, m.direction DESC LIMIT 1) AS last_direction, \
     (SELECT MAX(m.created_ms) FROM messages m WHERE m.conversation_id = c.id) AS last_ms \
     FROM conversations c JOIN contacts k ON k.id = c.contact_id";

fn summary_of(row: &AnyRow) -> Result<ConversationSummary, StoreError> {
    let last_text: Option<String> = row.try_get("last_text")?;
    let last_message = match last_text {
        Some(text) => Some(LastMessage {
            text,
            direction: row
                .try_get::<Option<String>, _>("last_direction")?
                .unwrap_or_default(),
            created_ms: row.try_get::<Option<i64>, _>("last_ms")?.unwrap_or(0),
        }),
        None => None,
    };
    Ok(ConversationSummary {
        id: row.try_get("id")?,
        channel: row.try_get("channel")?,
        contact: ContactView {
            id: row.try_get("contact_id")?,
            name: row.try_get("display_name")?,
            address: row.try_get("address")?,
        },
        owner: row.try_get("owner")?,
        status: row.try_get("status")?,
        waiting_since_ms: row.try_get("waiting_since_ms")?,
        unread: row.try_get("unread")?,
        updated_ms: row.try_get("updated_ms")?,
        last_message,
        queue_item: None,
    })
}

fn queue_view(row: &AnyRow) -> Result<(String, QueueItemView), StoreError> {
    let fields: Option<String> = row.try_get("fields")?;
    Ok((
        row.try_get("conversation_id")?,
        QueueItemView {
            id: row.try_get("id")?,
            reason: row.try_get("reason")?,
            priority: row.try_get("priority")?,
            summary: row.try_get("summary")?,
            fields: fields
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or_else(|| serde_json::json!({})),
            created_ms: row.try_get("created_ms")?,
        },
    ))
}

impl Store {
    /// A conversation list; `query` keeps those with a message (or a contact
    /// name or address) containing it, case-insensitively.
    pub async fn list_conversations(
        &self,
        view: View,
        query: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let mut sql = String::from(SUMMARY_COLUMNS);
        let mut filters = Vec::new();
        if view == View::NeedsYou {
            filters.push("EXISTS (SELECT 1 FROM queue_items q WHERE q.conversation_id = c.id AND q.state = 'open')");
        }
        let pattern = query
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(like_pattern);
        if pattern.is_some() {
            filters.push("(EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND LOWER(m.text) LIKE $2 ESCAPE '\\') \
                 OR LOWER(COALESCE(k.display_name, '')) LIKE $2 ESCAPE '\\' OR LOWER(k.address) LIKE $2 ESCAPE '\\')");
        }
        if !filters.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&filters.join(" AND "));
        }
        sql.push_str(match view {
            View::NeedsYou => " ORDER BY waiting_since_ms, c.id LIMIT $1",
            View::All => " ORDER BY c.updated_ms DESC, c.id LIMIT $1",
        });
        let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit);
        if let Some(pattern) = pattern {
            statement = statement.bind(pattern);
        }
        let rows = statement.fetch_all(&self.pool).await?;
        let mut summaries = rows.iter().map(summary_of).collect::<Result<Vec<_>, _>>()?;
        self.attach_queue_items(&mut summaries).await?;
        Ok(summaries)
    }

    /// One conversation's summary.
    pub async fn conversation_summary(
        &self,
        conversation_id: &str,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        let sql = format!("{SUMMARY_COLUMNS} WHERE c.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut summaries = vec![summary_of(&row)?];
        self.attach_queue_items(&mut summaries).await?;
        Ok(summaries.pop())
    }

    /// The most urgent open queue item of each conversation.
    async fn attach_queue_items(
        &self,
        summaries: &mut [ConversationSummary],
    ) -> Result<(), StoreError> {
        if summaries.iter().all(|s| s.waiting_since_ms.is_none()) {
            return Ok(());
        }
        let rows = sqlx::query(
            "SELECT id, conversation_id, reason, priority, summary, fields, created_ms FROM queue_items \
             WHERE state = 'open' ORDER BY priority DESC, created_ms DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        // Later rows overwrite earlier ones: the most urgent, oldest item wins.
        let mut by_conversation: HashMap<String, QueueItemView> = HashMap::new();
        for row in &rows {
            let (conversation_id, item) = queue_view(row)?;
            by_conversation.insert(conversation_id, item);
        }
        for summary in summaries {
            summary.queue_item = by_conversation.remove(&summary.id);
        }
        Ok(())
    }

    /// Every message of the conversation's customer, across the channels their
    /// contacts are linked on, oldest first.
    pub async fn inbox_messages(
        &self,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<InboxMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT m.id, m.direction, m.author, m.channel, m.text, m.status, m.error, m.action, m.reason, m.confidence, m.sources, m.created_ms \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN contacts k ON k.id = c.contact_id \
             WHERE COALESCE(k.linked_to, k.id) = (SELECT COALESCE(k2.linked_to, k2.id) FROM conversations c2 JOIN contacts k2 ON k2.id = c2.contact_id WHERE c2.id = $1) \
             ORDER BY m.created_ms DESC, m.direction DESC, m.id DESC LIMIT $2) recent ORDER BY created_ms, direction, id",
        )
        .bind(conversation_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut attachments = self.conversation_attachments(conversation_id).await?;
        rows.iter()
            .map(|row| {
                let sources: Option<String> = row.try_get("sources")?;
                let id: String = row.try_get("id")?;
                let (own, others): (Vec<_>, Vec<_>) =
                    attachments.drain(..).partition(|a| a.message_id == id);
                attachments = others;
                Ok(InboxMessage {
                    attachments: own,
                    id,
                    direction: row.try_get("direction")?,
                    author: row.try_get("author")?,
                    channel: row.try_get("channel")?,
                    text: row.try_get("text")?,
                    status: row.try_get("status")?,
                    error: row.try_get("error")?,
                    created_ms: row.try_get("created_ms")?,
                    action: row.try_get("action")?,
                    reason: row.try_get("reason")?,
                    confidence: row.try_get("confidence")?,
                    sources: sources
                        .and_then(|s| serde_json::from_str(&s).ok())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// When the customer last wrote in this conversation, by the provider's
    /// clock where it gave one (messaging windows are counted from it).
    pub async fn last_customer_message_ms(
        &self,
        conversation_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(COALESCE(provider_ms, created_ms)) AS at FROM messages WHERE conversation_id = $1 AND direction = 'in'",
        )
        .bind(conversation_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("at")?)
    }

    pub async fn notes(&self, conversation_id: &str) -> Result<Vec<Note>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, author, text, created_ms FROM notes WHERE conversation_id = $1 ORDER BY created_ms, id",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
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

    pub async fn add_note(
        &self,
        conversation_id: &str,
        author: &str,
        text: &str,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let mut tx = self.pool.begin().await?;
        self.require_conversation(&mut tx, conversation_id).await?;
        sqlx::query("INSERT INTO notes (id, conversation_id, author, text, created_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(conversation_id)
            .bind(author)
            .bind(text)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        events::record_in(&mut tx, "note", Some(conversation_id)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The owner has seen everything up to now.
    pub async fn mark_read(&self, conversation_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE conversations SET read_ms = $2 WHERE id = $1")
            .bind(conversation_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "conversation {conversation_id}"
            )));
        }
        events::record_in(&mut tx, "read", Some(conversation_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Locks the conversation row for the transaction (SQLite: takes the write
    /// lock) and fails when it does not exist.
    async fn require_conversation(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        conversation_id: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE conversations SET updated_ms = updated_ms WHERE id = $1")
            .bind(conversation_id)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "conversation {conversation_id}"
            )));
        }
        Ok(())
    }

    /// A person's reply: in one transaction the person becomes the owner (so a
    /// bot reply being written now is silenced by `complete_job`'s check), the
    /// message is stored and its outbox row is queued. Returns the message id.
    pub async fn reply_as_human(
        &self,
        conversation_id: &str,
        reply: &HumanReply,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE conversations SET owner = 'human', updated_ms = $2 WHERE id = $1")
                .bind(conversation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "conversation {conversation_id}"
            )));
        }
        let target = sqlx::query(
            "SELECT c.channel, c.business_account, k.address FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE c.id = $1",
        )
        .bind(conversation_id)
        .fetch_one(&mut *tx)
        .await?;
        let channel: String = target.try_get("channel")?;
        let (in_reply_to, subject) = if channel == Channel::Email.as_str() {
            let last: Option<AnyRow> = sqlx::query(
                "SELECT provider_message_id, subject FROM messages WHERE conversation_id = $1 AND direction = 'in' ORDER BY created_ms DESC LIMIT 1",
            )
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?;
            match last {
                Some(row) => (
                    row.try_get::<Option<String>, _>("provider_message_id")?,
                    row.try_get::<Option<String>, _>("subject")?,
                ),
                None => (None, None),
            }
        } else {
            (None, None)
        };
        let message_id = new_id();
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, direction, author, channel, provider_message_id, text, subject, status, created_ms, updated_ms) \
             VALUES ($1, $2, 'out', 'human', $3, NULL, $4, $5, 'queued', $6, $6)",
        )
        .bind(&message_id)
        .bind(conversation_id)
        .bind(&channel)
        .bind(&reply.text)
        .bind(subject.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO outbox (id, message_id, idempotency_key, channel, recipient, business_account, text, subject, in_reply_to, state, next_attempt_ms, created_ms, template, tag) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10, $11, $12)",
        )
        .bind(new_id())
        .bind(&message_id)
        .bind(format!("human:{message_id}"))
        .bind(&channel)
        .bind(target.try_get::<String, _>("address")?)
        .bind(target.try_get::<String, _>("business_account")?)
        .bind(&reply.text)
        .bind(subject)
        .bind(in_reply_to)
        .bind(now)
        .bind(reply.template.clone())
        .bind(reply.tag.clone())
        .execute(&mut *tx)
        .await?;
        events::record_in(&mut tx, "message", Some(conversation_id)).await?;
        tx.commit().await?;
        Ok(message_id)
    }

    /// Gives the conversation back to the bot (status `open`) or closes it
    /// (`resolved`): every open queue item of it is resolved either way.
    pub async fn release_conversation(
        &self,
        conversation_id: &str,
        resolved: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE conversations SET owner = 'bot', status = $2, updated_ms = $3 WHERE id = $1",
        )
        .bind(conversation_id)
        .bind(if resolved { "resolved" } else { "open" })
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "conversation {conversation_id}"
            )));
        }
        let closed = sqlx::query(
            "UPDATE queue_items SET state = 'resolved', resolved_ms = $2 WHERE conversation_id = $1 AND state = 'open'",
        )
        .bind(conversation_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        events::record_in(&mut tx, "owner", Some(conversation_id)).await?;
        if closed.rows_affected() > 0 {
            events::record_in(&mut tx, "queue", Some(conversation_id)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The most urgent open queue item of a conversation.
    pub async fn open_queue_item(
        &self,
        conversation_id: &str,
    ) -> Result<Option<QueueItem>, StoreError> {
        let sql = format!(
            "{} WHERE q.conversation_id = $1 AND q.state = 'open' ORDER BY q.priority, q.created_ms LIMIT 1",
            super::queue::QUEUE_ITEM_SELECT
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(super::queue::queue_item_of).transpose()
    }

    /// True (and recorded) when no owner alert went out for this conversation
    /// in the last `quiet_ms`; atomic, so replicas never both send one.
    pub async fn claim_alert(
        &self,
        conversation_id: &str,
        now_ms: i64,
        quiet_ms: i64,
    ) -> Result<bool, StoreError> {
        let row: Option<AnyRow> = sqlx::query(
            "INSERT INTO alerts (conversation_id, last_sent_ms) VALUES ($1, $2) \
             ON CONFLICT (conversation_id) DO UPDATE SET last_sent_ms = excluded.last_sent_ms \
             WHERE alerts.last_sent_ms <= $3 RETURNING conversation_id",
        )
        .bind(conversation_id)
        .bind(now_ms)
        .bind(now_ms - quiet_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
