//! The group commit's fast path: a whole batch of plain inbound messages (no
//! echo, no attachment) written with one statement per table instead of six
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
//! whatever its size.

use super::ingest::Written;
use super::*;
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// `($1, $2, …), ($n, …)`: `rows` groups of `columns` numbered placeholders.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// A statement whose text holds only numbered placeholders (never a value)
/// and whose shape follows the batch size: sent unnamed rather than kept in
/// the statement cache, where every batch size would be a new entry
/// (measured on PostgreSQL: caching them made ingest slower, not faster).
fn statement<'q>(sql: String) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false)
}

/// The rows of `select` (a query ending in `WHERE channel = $1 AND column`)
/// whose column is one of `values`: one indexed lookup for a channel's values.
async fn select_in(
    tx: &mut sqlx::AnyConnection,
    select: &str,
    channel: &str,
    values: &[&str],
) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
    let sql = format!("{select} IN ({})", numbered(2, values.len()));
    let mut query = statement(sql).bind(channel.to_string());
    for value in values {
        query = query.bind(value.to_string());
    }
    Ok(query.fetch_all(&mut *tx).await?)
}

/// `$first, …`: `count` numbered placeholders.
fn numbered(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

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
/// rolls back).
pub(super) async fn ingest_rows_in(
    tx: &mut sqlx::AnyConnection,
    messages: &[&InboundMessage],
) -> Result<Result<Vec<Ingested>, Written>, StoreError> {
    let now = now_ms();
    let mut outcomes: Vec<Option<Ingested>> = vec![None; messages.len()];

    // 1. Duplicates: stored before, or earlier in this batch.
    let mut by_channel: HashMap<&str, Vec<&str>> = HashMap::new();
    for message in messages {
        by_channel
            .entry(message.channel.as_str())
            .or_default()
            .push(&message.provider_message_id);
    }
    let mut stored: HashSet<(String, String)> = HashSet::new();
    for (channel, ids) in &by_channel {
        let select =
            "SELECT provider_message_id FROM messages WHERE channel = $1 AND provider_message_id";
        for row in select_in(tx, select, channel, ids).await? {
            stored.insert((channel.to_string(), row.try_get("provider_message_id")?));
        }
    }
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
    let sql = format!(
        "INSERT INTO contacts (id, channel, address, display_name, created_ms) VALUES {} \
         ON CONFLICT (channel, address) DO UPDATE SET display_name = COALESCE(excluded.display_name, contacts.display_name) \
         RETURNING id, channel, address",
        placeholders(contact_keys.len(), 5)
    );
    let mut query = statement(sql);
    for (key, id) in contact_keys.iter().zip(&proposed) {
        query = query
            .bind(id.as_str())
            .bind(key.0)
            .bind(key.1)
            .bind(names[key].clone())
            .bind(now);
    }
    let mut contact_ids: HashMap<(String, String), String> = HashMap::new();
    for row in query.fetch_all(&mut *tx).await? {
        contact_ids.insert(
            (row.try_get("channel")?, row.try_get("address")?),
            row.try_get("id")?,
        );
    }
    let contact_of = |channel: &str, address: &str| -> Result<String, StoreError> {
        contact_ids
            .get(&(channel.to_string(), address.to_string()))
            .cloned()
            .ok_or(StoreError::Unavailable(
                "an upserted contact was not returned",
            ))
    };
    let mut new_contacts: Vec<(Channel, &str, String)> = Vec::new();
    for ((key, id), channel) in contact_keys.iter().zip(&proposed).zip(&contact_channels) {
        let stored_id = contact_of(key.0, key.1)?;
        if &stored_id == id {
            new_contacts.push((*channel, key.1, stored_id));
        }
    }
    link_new_contacts(tx, &new_contacts).await?;

    // 3. Conversations: one row per (contact, channel, business account); a
    // resolved one opens again.
    let mut conversation_keys: Vec<(String, &str, &str, Option<String>)> = Vec::new();
    let mut conversation_seen: HashSet<(String, &str, &str)> = HashSet::new();
    let mut message_contacts: Vec<String> = Vec::with_capacity(fresh.len());
    for &n in &fresh {
        let message = messages[n];
        let contact = contact_of(message.channel.as_str(), &message.sender)?;
        let key = (
            contact.clone(),
            message.channel.as_str(),
            message.business_account.as_str(),
        );
        if conversation_seen.insert(key.clone()) {
            conversation_keys.push((key.0, key.1, key.2, message.thread_ref.clone()));
        }
        message_contacts.push(contact);
    }
    let sql = format!(
        "INSERT INTO conversations (id, contact_id, channel, business_account, owner, status, thread_ref, created_ms, updated_ms) \
         VALUES {} ON CONFLICT (contact_id, channel, business_account) DO UPDATE SET updated_ms = excluded.updated_ms, \
         status = CASE WHEN conversations.status = 'resolved' THEN 'open' ELSE conversations.status END \
         RETURNING id, contact_id, channel, business_account",
        placeholders(conversation_keys.len(), 9)
    );
    let mut query = statement(sql);
    for (contact, channel, account, thread_ref) in &conversation_keys {
        query = query
            .bind(new_id())
            .bind(contact.as_str())
            .bind(*channel)
            .bind(*account)
            .bind("bot")
            .bind("open")
            .bind(thread_ref.clone())
            .bind(now)
            .bind(now);
    }
    let mut conversation_ids: HashMap<(String, String, String), String> = HashMap::new();
    for row in query.fetch_all(&mut *tx).await? {
        conversation_ids.insert(
            (
                row.try_get("contact_id")?,
                row.try_get("channel")?,
                row.try_get("business_account")?,
            ),
            row.try_get("id")?,
        );
    }

    // 4. Messages, then their events and jobs.
    let mut rows: Vec<(String, String)> = Vec::with_capacity(fresh.len()); // (message, conversation)
    for (&n, contact) in fresh.iter().zip(message_contacts) {
        let message = messages[n];
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
    let sql = format!(
        "INSERT INTO messages (id, conversation_id, direction, author, channel, provider_message_id, text, subject, status, provider_ms, created_ms, updated_ms) \
         VALUES {} ON CONFLICT (channel, provider_message_id) DO NOTHING RETURNING id",
        placeholders(fresh.len(), 12)
    );
    let mut query = statement(sql);
    for (&n, (id, conversation)) in fresh.iter().zip(&rows) {
        let message = messages[n];
        query = query
            .bind(id.as_str())
            .bind(conversation.as_str())
            .bind("in")
            .bind("customer")
            .bind(message.channel.as_str())
            .bind(message.provider_message_id.as_str())
            .bind(message.text.as_str())
            .bind(message.subject.clone())
            .bind("received")
            .bind((message.timestamp_ms > 0).then_some(message.timestamp_ms))
            .bind(now)
            .bind(now);
    }
    if query.fetch_all(&mut *tx).await?.len() != fresh.len() {
        return Ok(Err(Written::Raced));
    }
    let sql = format!(
        "INSERT INTO events (kind, conversation_id, created_ms) VALUES {}",
        placeholders(rows.len(), 3)
    );
    let mut query = statement(sql);
    for (_, conversation) in &rows {
        query = query.bind("message").bind(conversation.as_str()).bind(now);
    }
    query.execute(&mut *tx).await?;
    let sql = format!(
        "INSERT INTO jobs (message_id, state, created_ms) VALUES {}",
        placeholders(rows.len(), 3)
    );
    let mut query = statement(sql);
    for (id, _) in &rows {
        query = query.bind(id.as_str()).bind("pending").bind(now);
    }
    query.execute(&mut *tx).await?;

    for (&n, (message_id, conversation_id)) in fresh.iter().zip(rows) {
        outcomes[n] = Some(Ingested::New {
            message_id,
            conversation_id,
        });
    }
    Ok(Ok(outcomes.into_iter().flatten().collect()))
}

/// Links each new contact (in batch order) to the oldest contact with the
/// same phone number on the other channel: one lookup for the whole batch,
/// then an update per contact that has such a twin (few do).
async fn link_new_contacts(
    tx: &mut sqlx::AnyConnection,
    new_contacts: &[(Channel, &str, String)],
) -> Result<(), StoreError> {
    let wanted: Vec<(&'static str, String)> = new_contacts
        .iter()
        .filter_map(|(channel, address, _)| counterpart(*channel, address))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let new_ids: HashSet<&str> = new_contacts.iter().map(|(_, _, id)| id.as_str()).collect();
    // Roots of the twins that existed before this batch: one indexed lookup
    // per channel (`channel = $1 AND address IN (…)` uses the unique index on
    // both stores, where a row-value IN over VALUES can scan the table).
    let mut roots: HashMap<(String, String), String> = HashMap::new();
    let mut by_channel: HashMap<&str, Vec<&str>> = HashMap::new();
    for (channel, address) in &wanted {
        by_channel.entry(channel).or_default().push(address);
    }
    for (channel, addresses) in &by_channel {
        let select = "SELECT id, address, COALESCE(linked_to, id) AS root FROM contacts WHERE channel = $1 AND address";
        for row in select_in(tx, select, channel, addresses).await? {
            let id: String = row.try_get("id")?;
            if !new_ids.contains(id.as_str()) {
                roots.insert(
                    (channel.to_string(), row.try_get("address")?),
                    row.try_get("root")?,
                );
            }
        }
    }
    // The batch's own new contacts join as they are met, so a twin written
    // earlier in the batch is found and a later one is not.
    for (channel, address, id) in new_contacts {
        let own = (channel.as_str().to_string(), address.to_string());
        let root = match counterpart(*channel, address) {
            Some((other_channel, other_address)) => roots
                .get(&(other_channel.to_string(), other_address))
                .cloned(),
            None => continue,
        };
        match root {
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
