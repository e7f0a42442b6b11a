//! `frontdesk contact find|export|erase` and `frontdesk retention apply`:
//! what they print and when they refuse. Each returns whether it succeeded
//! (the binary maps `false` to exit code 1); what they say goes to `out`,
//! warnings and questions to stderr.

use super::{PrivacyError, Removed};
use crate::cli::{ContactAction, RetentionAction};
use crate::config::Settings;
use crate::store::Store;
use std::io::{BufRead, IsTerminal, Write};

/// The most contacts `find` lists.
const FIND_LIMIT: i64 = 50;

fn io_error(path: &str) -> impl Fn(std::io::Error) -> PrivacyError + '_ {
    move |source| PrivacyError::Io {
        path: path.into(),
        source,
    }
}

/// A day and time in UTC, for listings.
fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn removed_line(removed: &Removed) -> String {
    let rows = &removed.rows;
    format!(
        "{} contact(s), {} conversation(s), {} message(s), {} unsent repl{}, {} photo file(s)",
        rows.contacts,
        rows.conversations,
        rows.messages,
        rows.unsent_replies,
        if rows.unsent_replies == 1 { "y" } else { "ies" },
        removed.photo_files
    )
}

pub async fn contact(
    settings: &Settings,
    action: &ContactAction,
    out: &mut dyn Write,
) -> Result<bool, PrivacyError> {
    let store = Store::connect(&settings.database()).await?;
    let stdout = io_error("stdout");
    match action {
        ContactAction::Find { query } => {
            let found = store.find_contacts(query, FIND_LIMIT).await?;
            if found.is_empty() {
                writeln!(out, "no contact matches `{query}`").map_err(&stdout)?;
                return Ok(false);
            }
            for found in found {
                let contact = &found.contact;
                let last = found
                    .last_message_ms
                    .map(|ms| format!(", last {}", when(ms)))
                    .unwrap_or_default();
                let linked = contact
                    .linked_to
                    .as_deref()
                    .map(|root| format!("  linked to {root}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}  {:<9} {}  {}  ({} message(s){last}){linked}",
                    contact.id,
                    contact.channel,
                    contact.address,
                    contact.name.as_deref().unwrap_or("-"),
                    found.messages
                )
                .map_err(&stdout)?;
            }
            Ok(true)
        }
        ContactAction::Export { id, out: file } => {
            let Some(export) = super::export_contact(&store, &settings.data_dir, id).await? else {
                eprintln!("no contact with id `{id}` (find it with `frontdesk contact find`)");
                return Ok(false);
            };
            let path = file
                .clone()
                .unwrap_or_else(|| format!("contact-{id}.zip").into());
            let shown = path.display().to_string();
            // Never overwrite: an export is personal data, and so may be what is there.
            let mut written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_error(&shown))?;
            written.write_all(&export.zip).map_err(io_error(&shown))?;
            written.sync_all().map_err(io_error(&shown))?;
            writeln!(
                out,
                "exported {} message(s) in {} conversation(s), {} photo(s), of {} contact(s) into {shown}",
                export.messages, export.conversations, export.photos, export.contacts
            )
            .map_err(&stdout)?;
            Ok(true)
        }
        ContactAction::Erase { id, yes } => {
            let Some(person) = store.person_data(id).await? else {
                eprintln!("no contact with id `{id}` (find it with `frontdesk contact find`)");
                return Ok(false);
            };
            if !yes {
                let messages: usize = person.conversations.iter().map(|c| c.messages.len()).sum();
                let addresses: Vec<String> = person
                    .contacts
                    .iter()
                    .map(|c| format!("{} {}", c.channel, c.address))
                    .collect();
                if !std::io::stdin().is_terminal() {
                    eprintln!(
                        "erasing cannot be undone: pass --yes to erase {} ({messages} message(s))",
                        addresses.join(", ")
                    );
                    return Ok(false);
                }
                eprint!(
                    "erase {} with {} conversation(s) and {messages} message(s)? This cannot be undone. Type `erase` to confirm: ",
                    addresses.join(", "),
                    person.conversations.len()
                );
                let mut answer = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut answer)
                    .map_err(io_error("stdin"))?;
                if answer.trim() != "erase" {
                    eprintln!("nothing was erased");
                    return Ok(false);
                }
            }
            let Some(removed) = super::erase_contact(&store, &settings.data_dir, id).await? else {
                eprintln!("the contact `{id}` was already gone");
                return Ok(false);
            };
            writeln!(out, "erased {}", removed_line(&removed)).map_err(&stdout)?;
            Ok(true)
        }
    }
}

pub async fn retention(
    settings: &Settings,
    action: &RetentionAction,
    out: &mut dyn Write,
) -> Result<bool, PrivacyError> {
    let stdout = io_error("stdout");
    let RetentionAction::Apply { days, dry_run } = action;
    let days = days.or(settings.retention.days);
    let Some(cutoff) = super::retention_cutoff(days, crate::store::now_ms()) else {
        eprintln!("no retention is set: pass --days N, or set `[retention] days` (FRONTDESK_RETENTION_DAYS)");
        return Ok(false);
    };
    let store = Store::connect(&settings.database()).await?;
    let days = days.unwrap_or_default();
    if *dry_run {
        let expired = store.count_expired(cutoff).await?;
        writeln!(
            out,
            "{expired} conversation(s) last active before {} ({days} days ago) would be deleted",
            when(cutoff)
        )
        .map_err(&stdout)?;
        return Ok(true);
    }
    let removed = super::apply_retention(&store, &settings.data_dir, cutoff).await?;
    writeln!(
        out,
        "deleted {} (last active before {}, {days} days ago; conversations with an open queue item kept)",
        removed_line(&removed),
        when(cutoff)
    )
    .map_err(&stdout)?;
    Ok(true)
}
