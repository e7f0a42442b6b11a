//! The owner's duties toward her customers' data: hand one person everything
//! stored about them (`export`), forget one person (`erase_contact`), and
//! forget conversations older than the retention setting (`apply_retention`,
//! run by `serve` every hour and by `frontdesk retention apply`).
//!
//! A person is a contact plus the contacts linked to it (one phone number on
//! WhatsApp and SMS): the inbox shows them as one history, so export and
//! erasure always cover them together. The rows go in one store transaction;
//! the photo files are deleted right after it commits (a file is never left
//! pointing at nothing the other way round). Nothing here writes SQL.

pub mod commands;
pub mod export;

use crate::store::{Purged, Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use export::Export;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the export: {0}")]
    Zip(String),
    #[error("{0}")]
    Interrupted(String),
}

/// What an erasure or a retention pass removed, files included.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    #[serde(flatten)]
    pub rows: Purged,
    /// Photo files deleted from the data dir.
    pub photo_files: usize,
}

/// Everything stored about the person `contact_id` belongs to, as a zip;
/// `None` for an unknown contact.
pub async fn export_contact(
    store: &Store,
    data_dir: &Path,
    contact_id: &str,
) -> Result<Option<Export>, PrivacyError> {
    let Some(person) = store.person_data(contact_id).await? else {
        return Ok(None);
    };
    let data_dir = data_dir.to_path_buf();
    let requested = contact_id.to_string();
    let now = crate::store::now_ms();
    tokio::task::spawn_blocking(move || export::build(&person, &requested, &data_dir, now))
        .await
        .map_err(|e| PrivacyError::Interrupted(e.to_string()))?
        .map(Some)
}

/// Erases the person `contact_id` belongs to (linked contacts included):
/// every row in one transaction, then their photo files. `None` for an
/// unknown contact. A reply not yet sent is gone with its outbox row; one a
/// worker is handing to the provider at this very moment cannot be recalled.
pub async fn erase_contact(
    store: &Store,
    data_dir: &Path,
    contact_id: &str,
) -> Result<Option<Removed>, PrivacyError> {
    let Some(rows) = store.erase_person(contact_id).await? else {
        return Ok(None);
    };
    let photo_files = remove_photo_files(data_dir, &rows.attachment_ids).await?;
    tracing::info!(
        contacts = rows.contacts,
        conversations = rows.conversations,
        messages = rows.messages,
        photo_files,
        "a contact was erased"
    );
    Ok(Some(Removed { rows, photo_files }))
}

/// The cutoff for a retention of `days`: conversations last active before it
/// expire. `None` (keep everything) for no setting or 0 days.
pub fn retention_cutoff(days: Option<u32>, now_ms: i64) -> Option<i64> {
    let days = days.filter(|d| *d > 0)?;
    Some(now_ms - i64::from(days) * 24 * 3600 * 1000)
}

/// Deletes every conversation last active before `cutoff_ms` but those with
/// an open queue item, with everything they hold, then their photo files.
pub async fn apply_retention(
    store: &Store,
    data_dir: &Path,
    cutoff_ms: i64,
) -> Result<Removed, PrivacyError> {
    let rows = store.apply_retention(cutoff_ms).await?;
    let photo_files = remove_photo_files(data_dir, &rows.attachment_ids).await?;
    Ok(Removed { rows, photo_files })
}

/// Deletes the photos' files; one already missing is not an error.
pub async fn remove_photo_files(data_dir: &Path, ids: &[String]) -> Result<usize, PrivacyError> {
    let paths: Vec<PathBuf> = ids
        .iter()
        .filter(|id| crate::attachments::is_attachment_id(id))
        .map(|id| crate::attachments::path_of(data_dir, id))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        for path in paths {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(PrivacyError::Io { path, source }),
            }
        }
        Ok(removed)
    })
    .await
    .map_err(|e| PrivacyError::Interrupted(e.to_string()))?
}

/// How often `serve` applies the retention setting.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// `serve`'s retention task: a pass at start, then every hour, while
/// `[retention] days` is set (every replica may run it: a conversation is
/// deleted once, the others find it gone).
pub async fn run_retention_worker(
    state: crate::http::AppState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let days = state.settings.retention.days;
    if retention_cutoff(days, 0).is_none() {
        return;
    }
    loop {
        if let Some(cutoff) = retention_cutoff(days, crate::store::now_ms()) {
            match apply_retention(&state.store, &state.settings.data_dir, cutoff).await {
                Ok(removed) if removed.rows.conversations == 0 => {}
                Ok(removed) => tracing::info!(
                    conversations = removed.rows.conversations,
                    messages = removed.rows.messages,
                    contacts = removed.rows.contacts,
                    photo_files = removed.photo_files,
                    days,
                    "old conversations deleted (retention)"
                ),
                Err(error) => tracing::warn!(%error, "applying the retention setting failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = stopped.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_off_without_days_or_with_zero() {
        let day = 24 * 3600 * 1000;
        assert_eq!(retention_cutoff(None, 10 * day), None);
        assert_eq!(retention_cutoff(Some(0), 10 * day), None);
        assert_eq!(retention_cutoff(Some(3), 10 * day), Some(7 * day));
    }
}
