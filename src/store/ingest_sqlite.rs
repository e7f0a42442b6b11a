//! The SQLite statements of the group commit's fast path
//! ([`super::ingest_rows`]): the batch's lookup, then every row it writes
//! (contacts, conversations, messages, events, jobs) in one command of five
//! statements. Both have fixed text and take the batch's rows as JSON
//! parameters (`json_each`), so SQLite parses and plans them once per
//! connection (the statement cache), and a batch costs two round trips to
//! the connection's thread inside its transaction, whatever its size.
//!
//! Measured with `perf` and `bench/ingest.sh` before this shape: statements
//! whose text grew with the batch (a placeholder per value) spent most of
//! the connection thread's time in SQLite's parser, its allocator and its
//! lookup of numbered placeholders, which is linear in the placeholders
//! already seen (quadratic per statement).

use super::*;
use sqlx::Row;
use std::collections::HashMap;

/// The stored provider ids among `$1` (JSON `[channel, provider id]` pairs)
/// and the root contact of each address in `$2` (`[channel, address]`). The
/// JSON rows drive each join (`CROSS JOIN` keeps that order), each looked up
/// through its table's unique index.
const LOOKUP: &str =
    "SELECT 'stored' AS kind, m.channel AS channel, m.provider_message_id AS a, '' AS b \
     FROM json_each(?) AS j CROSS JOIN messages AS m \
     ON m.channel = j.value ->> 0 AND m.provider_message_id = j.value ->> 1 \
     UNION ALL SELECT 'twin', c.channel, c.address, COALESCE(c.linked_to, c.id) \
     FROM json_each(?) AS j CROSS JOIN contacts AS c \
     ON c.channel = j.value ->> 0 AND c.address = j.value ->> 1";

/// Upserts the contacts (rows `[id, channel, address, name]`) and the
/// conversations (`[id, channel, address, business account, thread ref]`),
/// inserts the messages (`[id, channel, address, business account, provider
/// id, text, subject, provider ms]`), then an event and a job for each
/// message id (`[id, …]`, in batch order). Each row finds the id it refers
/// to by the unique key the statement before it wrote: a conversation its
/// contact's (channel, address), a message its conversation's (contact,
/// channel, business account), an event its message's id. `?` in order: now,
/// contacts; now, now, conversations; now, now, messages; now, ids; now, ids.
/// `WHERE true` lets an upsert follow `INSERT … SELECT` (SQLite's grammar).
const WRITE: &str = concat!(
    "INSERT INTO contacts (id, channel, address, display_name, created_ms) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, ? FROM json_each(?) WHERE true \
     ON CONFLICT (channel, address) DO UPDATE SET display_name = COALESCE(excluded.display_name, contacts.display_name) \
     RETURNING 'contact' AS kind, id, channel AS a, address AS b; \
     INSERT INTO conversations (id, contact_id, channel, business_account, owner, status, thread_ref, created_ms, updated_ms) \
     SELECT value ->> 0, (SELECT id FROM contacts WHERE channel = value ->> 1 AND address = value ->> 2), \
     value ->> 1, value ->> 3, 'bot', 'open', value ->> 4, ?, ? FROM json_each(?) WHERE true",
    super::ingest_rows::conversation_conflict!(),
    "; INSERT INTO messages (id, conversation_id, direction, author, channel, provider_message_id, text, subject, status, provider_ms, created_ms, updated_ms) \
     SELECT value ->> 0, (SELECT v.id FROM conversations AS v WHERE v.contact_id = \
     (SELECT c.id FROM contacts AS c WHERE c.channel = value ->> 1 AND c.address = value ->> 2) \
     AND v.channel = value ->> 1 AND v.business_account = value ->> 3), \
     'in', 'customer', value ->> 1, value ->> 4, value ->> 5, value ->> 6, 'received', value ->> 7, ?, ? \
     FROM json_each(?) WHERE true \
     ON CONFLICT (channel, provider_message_id) DO NOTHING \
     RETURNING 'message' AS kind, id, conversation_id AS a, '' AS b; \
     INSERT INTO events (kind, conversation_id, created_ms) \
     SELECT 'message', m.conversation_id, ? FROM json_each(?) AS j CROSS JOIN messages AS m ON m.id = j.value ORDER BY j.key; \
     INSERT INTO jobs (message_id, state, created_ms) SELECT value, 'pending', ? FROM json_each(?) ORDER BY key"
);

/// The batch's stored provider ids and the senders' twins on the other
/// channel (see `ingest_rows::lookup`), in one statement.
pub(super) async fn lookup(
    tx: &mut sqlx::AnyConnection,
    messages: &[&InboundMessage],
    twins: &[(&str, String)],
) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
    let stored: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| serde_json::json!([m.channel.as_str(), m.provider_message_id]))
        .collect();
    let twins: Vec<serde_json::Value> = twins
        .iter()
        .map(|(channel, address)| serde_json::json!([channel, address]))
        .collect();
    Ok(sqlx::query(LOOKUP)
        .bind(serde_json::Value::Array(stored).to_string())
        .bind(serde_json::Value::Array(twins).to_string())
        .fetch_all(&mut *tx)
        .await?)
}

/// A contact row to upsert: (proposed id, channel, address, display name).
pub(super) type ContactRow<'a> = (&'a str, &'a str, &'a str, Option<String>);

/// Contact ids by (channel, address), and (message id, conversation id) for
/// each fresh message, in order.
pub(super) type Written = (HashMap<(String, String), String>, Vec<(String, String)>);

/// Writes the batch's rows ([`WRITE`]). `None` when a message was already
/// stored (the caller rolls back): on SQLite one connection writes, and the
/// caller has removed the provider ids stored or repeated in the batch, so
/// that does not happen; its event would then fail on its missing
/// conversation and the batch be written one message at a time.
pub(super) async fn write(
    tx: &mut sqlx::AnyConnection,
    messages: &[&InboundMessage],
    fresh: &[usize],
    contacts: &[ContactRow<'_>],
    conversations: &[(&str, &str, &str, Option<String>)],
    now: i64,
) -> Result<Option<Written>, StoreError> {
    let json = |rows: Vec<serde_json::Value>| serde_json::Value::Array(rows).to_string();
    let contact_rows = contacts
        .iter()
        .map(|(id, channel, address, name)| serde_json::json!([id, channel, address, name]))
        .collect();
    let conversation_rows = conversations
        .iter()
        .map(|(channel, address, account, thread_ref)| {
            serde_json::json!([new_id(), channel, address, account, thread_ref])
        })
        .collect();
    let ids: Vec<String> = fresh.iter().map(|_| new_id()).collect();
    let message_rows = fresh
        .iter()
        .zip(&ids)
        .map(|(&n, id)| {
            let m = messages[n];
            serde_json::json!([
                id,
                m.channel.as_str(),
                m.sender,
                m.business_account,
                m.provider_message_id,
                m.text,
                m.subject,
                (m.timestamp_ms > 0).then_some(m.timestamp_ms)
            ])
        })
        .collect();
    let id_list = json(ids.iter().map(|id| serde_json::json!(id)).collect());
    let rows = sqlx::query(WRITE)
        .bind(now)
        .bind(json(contact_rows))
        .bind(now)
        .bind(now)
        .bind(json(conversation_rows))
        .bind(now)
        .bind(now)
        .bind(json(message_rows))
        .bind(now)
        .bind(id_list.clone())
        .bind(now)
        .bind(id_list)
        .fetch_all(&mut *tx)
        .await?;

    let mut contact_ids = HashMap::new();
    let mut conversation_of: HashMap<String, String> = HashMap::new();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let (id, a, b): (String, String, String) =
            (row.try_get("id")?, row.try_get("a")?, row.try_get("b")?);
        if kind == "contact" {
            contact_ids.insert((a, b), id);
        } else {
            conversation_of.insert(id, a);
        }
    }
    if conversation_of.len() != ids.len() {
        return Ok(None);
    }
    let rows = ids
        .into_iter()
        .map(|id| {
            let conversation = conversation_of.remove(&id).unwrap_or_default();
            (id, conversation)
        })
        .collect();
    Ok(Some((contact_ids, rows)))
}
