//! The group commit's fast path: a whole batch of plain inbound messages (no
//! echo, no attachment) written with a handful of statements instead of six
//! per message.
//!
//! The rows are exactly those [`super::ingest::ingest_in`] writes for the same
//! messages one after another: a provider id already stored, or seen earlier
//! in the batch, is a duplicate; a sender's contact and conversation are
//! upserted once however many of their messages the batch holds; a new
//! WhatsApp or SMS contact is linked to the same number on the other channel,
//! to the oldest contact of the group, as if the contacts had been written in
//! batch order. Each statement is a round trip to the connection's thread
//! (SQLite) or to the server (PostgreSQL), so a batch costs a handful of them
//! whatever its size. Every statement has fixed text and takes the batch's
//! rows as JSON parameters (`json_to_recordset` here for PostgreSQL,
//! `json_each` in [`super::ingest_sqlite`]): each is parsed and planned once
//! per connection, not once per batch (half a millisecond each on
//! PostgreSQL, measured, when the text followed the batch size).

use super::ingest::Written;
use super::*;
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// The WhatsApp/SMS address of the same phone number on the other channel.
fn counterpart(channel: Channel, address: &str) -> Option<(&'static str, String)> {
    let digits: String = address.chars().filter(char::is_ascii_digit).collect();
    match channel {
        Channel::Whatsapp => Some(("sms", format!("+{digits}"))),
        Channel::Sms => Some(("whatsapp", digits)),
        _ => None,
    }
}

/// Whether a message can take the fast path.
pub(super) fn is_plain(message: &InboundMessage, attachments: &[NewAttachment]) -> bool {
    !message.is_echo && attachments.is_empty()
}

/// Writes `messages` (all [`is_plain`]) inside the caller's transaction; one
/// outcome per message, in order, or [`Written::Raced`] when a message's insert
/// met a row another writer committed after the duplicate check (the caller
/// rolls back). On PostgreSQL the contacts and conversations go in one
/// statement and the messages, events and jobs in another (data-modifying
/// `WITH`); on SQLite everything after the lookup is one command of five
/// statements (`ingest_sqlite`).
pub(super) async fn ingest_rows_in(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    messages: &[&InboundMessage],
) -> Result<Result<Vec<Ingested>, Written>, StoreError> {
    let now = now_ms();
    let mut outcomes: Vec<Option<Ingested>> = vec![None; messages.len()];

    // 1. One lookup: the provider ids already stored, and the contacts with
    // the same phone number on the other channel as a sender (their roots).
    let Lookup { stored, roots } = lookup(tx, backend, messages).await?;
    let mut fresh: Vec<usize> = Vec::with_capacity(messages.len());
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (n, message) in messages.iter().enumerate() {
        let key = (
            message.channel.as_str(),
            message.provider_message_id.as_str(),
        );
        if stored.contains(&(key.0.to_string(), key.1.to_string())) || !seen.insert(key) {
            outcomes[n] = Some(Ingested::Duplicate);
        } else {
            fresh.push(n);
        }
    }
    if fresh.is_empty() {
        return Ok(Ok(outcomes.into_iter().flatten().collect()));
    }

    // 2. Contacts: one row per (channel, address), the last name given wins
    // (what upserting them one message at a time leaves).
    let mut contact_keys: Vec<(&str, &str)> = Vec::new();
    let mut contact_channels: Vec<Channel> = Vec::new();
    let mut names: HashMap<(&str, &str), Option<String>> = HashMap::new();
    for &n in &fresh {
        let message = messages[n];
        let key = (message.channel.as_str(), message.sender.as_str());
        match names.get_mut(&key) {
            Some(name) => {
                if message.sender_name.is_some() {
                    name.clone_from(&message.sender_name);
                }
            }
            None => {
                contact_keys.push(key);
                contact_channels.push(message.channel);
                names.insert(key, message.sender_name.clone());
            }
        }
    }
    let proposed: Vec<String> = contact_keys.iter().map(|_| new_id()).collect();
    let contact_rows: Vec<ContactRow> = contact_keys
        .iter()
        .zip(&proposed)
        .map(|(key, id)| (id.as_str(), key.0, key.1, names[key].clone()))
        .collect();

    // 3. Conversations: one row per (contact, channel, business account); a
    // resolved one opens again. Keyed by the contact's address here: its id
    // is known only once the contacts are written.
    let mut conversation_keys: Vec<(&str, &str, &str, Option<String>)> = Vec::new();
    let mut conversation_seen: HashSet<(&str, &str, &str)> = HashSet::new();
    for &n in &fresh {
        let message = messages[n];
        let key = (
            message.channel.as_str(),
            message.sender.as_str(),
            message.business_account.as_str(),
        );
        if conversation_seen.insert(key) {
            conversation_keys.push((key.0, key.1, key.2, message.thread_ref.clone()));
        }
    }
    let (contact_ids, rows) = match backend {
        Backend::Postgres => {
            let (contact_ids, conversation_ids) =
                write_people_in_one(tx, &contact_rows, &conversation_keys, now).await?;
            // (message, conversation) per fresh message, in order.
            let mut rows: Vec<(String, String)> = Vec::with_capacity(fresh.len());
            for &n in &fresh {
                let message = messages[n];
                let contact = contact_ids
                    .get(&(message.channel.as_str().to_string(), message.sender.clone()))
                    .cloned()
                    .ok_or(StoreError::Unavailable(
                        "an upserted contact was not returned",
                    ))?;
                let conversation = conversation_ids
                    .get(&(
                        contact,
                        message.channel.as_str().to_string(),
                        message.business_account.clone(),
                    ))
                    .cloned()
                    .ok_or(StoreError::Unavailable(
                        "an upserted conversation was not returned",
                    ))?;
                rows.push((new_id(), conversation));
            }
            if write_messages_in_one(tx, messages, &fresh, &rows, now).await? != fresh.len() {
                return Ok(Err(Written::Raced));
            }
            (contact_ids, rows)
        }
        Backend::Sqlite => {
            match super::ingest_sqlite::write(
                tx,
                messages,
                &fresh,
                &contact_rows,
                &conversation_keys,
                now,
            )
            .await?
            {
                Some(written) => written,
                None => return Ok(Err(Written::Raced)),
            }
        }
    };
    let mut new_contacts: Vec<(Channel, &str, String)> = Vec::new();
    for ((key, id), channel) in contact_keys.iter().zip(&proposed).zip(&contact_channels) {
        let stored_id = contact_ids
            .get(&(key.0.to_string(), key.1.to_string()))
            .ok_or(StoreError::Unavailable(
                "an upserted contact was not returned",
            ))?;
        if stored_id == id {
            new_contacts.push((*channel, key.1, stored_id.clone()));
        }
    }
    link_new_contacts(tx, &new_contacts, roots).await?;

    for (&n, (message_id, conversation_id)) in fresh.iter().zip(rows) {
        outcomes[n] = Some(Ingested::New {
            message_id,
            conversation_id,
        });
    }
    Ok(Ok(outcomes.into_iter().flatten().collect()))
}

use super::ingest_sqlite::ContactRow;

/// PostgreSQL: the messages, their events and their jobs in one statement
/// of fixed text (the rows travel as one JSON parameter), so the server
/// parses and plans it once per connection. Returns how many messages were
/// written (fewer than asked means one raced).
async fn write_messages_in_one(
    tx: &mut sqlx::AnyConnection,
    messages: &[&InboundMessage],
    fresh: &[usize],
    rows: &[(String, String)],
    now: i64,
) -> Result<usize, StoreError> {
    let rows: Vec<serde_json::Value> = fresh
        .iter()
        .zip(rows)
        .map(|(&n, (id, conversation))| {
            let message = messages[n];
            serde_json::json!({
                "id": id,
                "conversation_id": conversation,
                "channel": message.channel.as_str(),
                "provider_message_id": message.provider_message_id,
                "text": message.text,
                "subject": message.subject,
                "provider_ms": (message.timestamp_ms > 0).then_some(message.timestamp_ms),
            })
        })
        .collect();
    let written = sqlx::query(PG_MESSAGES)
        .bind(serde_json::Value::Array(rows).to_string())
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        .len();
    Ok(written)
}

/// The messages of a batch (`$1`, a JSON array of rows) with an event and a
/// job for exactly the rows written (`$2`: now, in ms).
const PG_MESSAGES: &str = "WITH m AS (INSERT INTO messages (id, conversation_id, direction, author, channel, provider_message_id, text, subject, status, provider_ms, created_ms, updated_ms) \
     SELECT r.id, r.conversation_id, 'in', 'customer', r.channel, r.provider_message_id, r.text, r.subject, 'received', r.provider_ms, $2, $2 \
     FROM json_to_recordset($1::json) AS r(id text, conversation_id text, channel text, provider_message_id text, text text, subject text, provider_ms bigint) \
     ON CONFLICT (channel, provider_message_id) DO NOTHING RETURNING id, conversation_id), \
     e AS (INSERT INTO events (kind, conversation_id, created_ms) SELECT 'message', conversation_id, $2 FROM m) \
     INSERT INTO jobs (message_id, state, created_ms) SELECT id, 'pending', $2 FROM m RETURNING message_id";

/// What one lookup before the writes finds.
struct Lookup {
    /// (channel, provider id) of the batch's messages already stored.
    stored: HashSet<(String, String)>,
    /// (channel, address) → root contact id, for every stored contact whose
    /// number a sender of the batch has on the other channel.
    roots: HashMap<(String, String), String>,
}

/// Both lookups in one statement.
///
/// SQLite: per channel, `channel = $1 AND col IN (…)` (which uses the unique
/// index; a row-value IN over VALUES can scan the table), joined with UNION
/// ALL. PostgreSQL: [`PG_LOOKUP`], of fixed text, the values as JSON: each
/// looked up on its own through the unique index (a `LATERAL` subquery whose
/// `OFFSET 0` keeps the planner from flattening it into a join). Before the
/// first ANALYZE of a table that grew fast (a new shop's first minutes) its
/// planner reads an IN list, or a plain join, as a filter over every row of
/// the channel: 4–6 ms a batch at 10,000 messages, measured, against 0.12 ms.
async fn lookup(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    messages: &[&InboundMessage],
) -> Result<Lookup, StoreError> {
    let twins: Vec<(&str, String)> = messages
        .iter()
        .filter_map(|m| counterpart(m.channel, &m.sender))
        .collect();
    let rows = match backend {
        Backend::Postgres => {
            let stored: Vec<serde_json::Value> = messages
                .iter()
                .map(|m| serde_json::json!({"channel": m.channel.as_str(), "value": m.provider_message_id}))
                .collect();
            let twins: Vec<serde_json::Value> = twins
                .iter()
                .map(|(channel, address)| serde_json::json!({"channel": channel, "value": address}))
                .collect();
            sqlx::query(PG_LOOKUP)
                .bind(serde_json::Value::Array(stored).to_string())
                .bind(serde_json::Value::Array(twins).to_string())
                .fetch_all(&mut *tx)
                .await?
        }
        Backend::Sqlite => super::ingest_sqlite::lookup(tx, messages, &twins).await?,
    };
    let mut found = Lookup {
        stored: HashSet::new(),
        roots: HashMap::new(),
    };
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let key = (row.try_get("channel")?, row.try_get("a")?);
        if kind == "stored" {
            found.stored.insert(key);
        } else {
            found.roots.insert(key, row.try_get("b")?);
        }
    }
    Ok(found)
}

/// The stored provider ids of `messages` and the roots of the `twins`
/// (the senders' numbers on the other channel), on PostgreSQL.
const PG_LOOKUP: &str = "SELECT 'stored' AS kind, l.channel, l.a, '' AS b \
     FROM json_to_recordset($1::json) AS v(channel text, value text) \
     CROSS JOIN LATERAL (SELECT channel, provider_message_id AS a FROM messages \
     WHERE channel = v.channel AND provider_message_id = v.value OFFSET 0) l \
     UNION ALL SELECT 'twin', l.channel, l.a, l.b \
     FROM json_to_recordset($2::json) AS v(channel text, value text) \
     CROSS JOIN LATERAL (SELECT channel, address AS a, COALESCE(linked_to, id) AS b FROM contacts \
     WHERE channel = v.channel AND address = v.value OFFSET 0) l";

/// Contact ids by (channel, address) and conversation ids by (contact,
/// channel, business account), as written.
type People = (
    HashMap<(String, String), String>,
    HashMap<(String, String, String), String>,
);

/// What upserting a conversation row does on conflict (a resolved
/// conversation opens again); shared by both backends' statements.
macro_rules! conversation_conflict {
    () => {
        " ON CONFLICT (contact_id, channel, business_account) DO UPDATE SET updated_ms = excluded.updated_ms, \
     status = CASE WHEN conversations.status = 'resolved' THEN 'open' ELSE conversations.status END"
    };
}
pub(super) use conversation_conflict;

/// PostgreSQL: contacts and conversations in one statement of fixed text
/// ([`PG_PEOPLE`]; the rows travel as JSON), each conversation joined to its
/// contact's row as upserted.
async fn write_people_in_one(
    tx: &mut sqlx::AnyConnection,
    contact_rows: &[ContactRow<'_>],
    keys: &[(&str, &str, &str, Option<String>)],
    now: i64,
) -> Result<People, StoreError> {
    let contacts: Vec<serde_json::Value> = contact_rows
        .iter()
        .map(|(id, channel, address, name)| {
            serde_json::json!({"id": id, "channel": channel, "address": address, "display_name": name})
        })
        .collect();
    let conversations: Vec<serde_json::Value> = keys
        .iter()
        .map(|(channel, address, account, thread_ref)| {
            serde_json::json!({
                "id": new_id(),
                "channel": channel,
                "address": address,
                "business_account": account,
                "thread_ref": thread_ref,
            })
        })
        .collect();
    let query = sqlx::query(PG_PEOPLE)
        .bind(serde_json::Value::Array(contacts).to_string())
        .bind(serde_json::Value::Array(conversations).to_string())
        .bind(now);
    let mut contact_ids = HashMap::new();
    let mut conversation_ids = HashMap::new();
    for row in query.fetch_all(&mut *tx).await? {
        let kind: String = row.try_get("kind")?;
        let (id, channel, a): (String, String, String) = (
            row.try_get("id")?,
            row.try_get("channel")?,
            row.try_get("a")?,
        );
        if kind == "contact" {
            contact_ids.insert((channel, a), id);
        } else {
            conversation_ids.insert((a, channel, row.try_get("b")?), id);
        }
    }
    Ok((contact_ids, conversation_ids))
}

/// Contacts (`$1`, JSON rows) upserted, then one conversation per (`$2`)
/// joined to its contact as written (`$3`: now, in ms); returns both kinds of
/// row with their ids.
const PG_PEOPLE: &str = concat!(
    "WITH c AS (INSERT INTO contacts (id, channel, address, display_name, created_ms) \
     SELECT r.id, r.channel, r.address, r.display_name, $3 \
     FROM json_to_recordset($1::json) AS r(id text, channel text, address text, display_name text) \
     ON CONFLICT (channel, address) DO UPDATE SET display_name = COALESCE(excluded.display_name, contacts.display_name) \
     RETURNING id, channel, address), \
     v AS (SELECT * FROM json_to_recordset($2::json) AS r(id text, channel text, address text, business_account text, thread_ref text)), \
     conv AS (INSERT INTO conversations (id, contact_id, channel, business_account, owner, status, thread_ref, created_ms, updated_ms) \
     SELECT v.id, c.id, v.channel, v.business_account, 'bot', 'open', v.thread_ref, $3, $3 \
     FROM v JOIN c ON c.channel = v.channel AND c.address = v.address",
    conversation_conflict!(),
    " RETURNING id, contact_id, channel, business_account) SELECT 'contact' AS kind, id, channel, address AS a, '' AS b FROM c \
     UNION ALL SELECT 'conversation', id, channel, contact_id, business_account FROM conv"
);

/// Links each new contact (in batch order) to the oldest contact with the
/// same phone number on the other channel: `roots` holds the twins stored
/// before this batch (from [`lookup`]); the batch's own new contacts join
/// as they are met, so a twin written earlier in the batch is found and a
/// later one is not. An update per contact that has such a twin (few do).
async fn link_new_contacts(
    tx: &mut sqlx::AnyConnection,
    new_contacts: &[(Channel, &str, String)],
    mut roots: HashMap<(String, String), String>,
) -> Result<(), StoreError> {
    for (channel, address, id) in new_contacts {
        let Some((other_channel, other_address)) = counterpart(*channel, address) else {
            continue;
        };
        let own = (channel.as_str().to_string(), address.to_string());
        match roots
            .get(&(other_channel.to_string(), other_address))
            .cloned()
        {
            Some(root) => {
                sqlx::query("UPDATE contacts SET linked_to = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(root.as_str())
                    .execute(&mut *tx)
                    .await?;
                roots.insert(own, root);
            }
            None => {
                roots.insert(own, id.clone());
            }
        }
    }
    Ok(())
}
