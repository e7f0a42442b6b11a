//! `frontdesk backup DIR` and `frontdesk restore DIR`: the owner's copy of
//! everything the service stored. A backup folder holds `frontdesk.db` (an
//! online SQLite copy, taken while `serve` keeps answering) and `attachments/`
//! (the photos customers sent). Restoring needs the service stopped: it checks
//! that nothing answers on the configured address, verifies the copy opens as
//! a frontdesk store (migrating it forward when it is older), keeps the
//! current database beside it as `frontdesk.db.before-restore-<ms>`, then puts
//! the copy in place.

use crate::config::Settings;
use crate::store::Store;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a finished backup or restore holds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub messages: i64,
    pub attachments: usize,
}

fn sqlite_only(settings: &Settings) -> Result<(), BackupError> {
    if settings.database_url.is_some() {
        return Err(BackupError::Refused(
            "this service stores in PostgreSQL: back it up with `pg_dump --format=custom \"$DATABASE_URL\" > frontdesk.dump` \
             (restore with `pg_restore --clean -d \"$DATABASE_URL\" frontdesk.dump`), and copy <data dir>/attachments/ alongside"
                .into(),
        ));
    }
    Ok(())
}

/// Copies every file of `from` into `to` that `to` does not have yet.
fn copy_missing(from: &Path, to: &Path) -> Result<usize, BackupError> {
    if !from.is_dir() {
        return Ok(0);
    }
    std::fs::create_dir_all(to).map_err(io(to))?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let path = entry.path();
        if !path.is_file() || path.extension().is_some_and(|e| e == "part") {
            continue;
        }
        let target = to.join(entry.file_name());
        if !target.exists() {
            std::fs::copy(&path, &target).map_err(io(&target))?;
        }
        copied += 1;
    }
    Ok(copied)
}

/// Backs the store and its attachments up into `dir` (new or empty).
pub async fn backup(settings: &Settings, dir: &Path) -> Result<Summary, BackupError> {
    sqlite_only(settings)?;
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(BackupError::Refused(format!(
            "{} is not empty: back up into a new folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let store = Store::connect(&settings.database()).await?;
    let file = dir.join("frontdesk.db");
    store.backup_to(&file).await?;
    store.close().await;
    let copy = Store::connect(&Store::sqlite_url(dir)).await?;
    let messages = copy.message_count().await?;
    copy.close().await;
    let attachments = copy_missing(
        &settings.data_dir.join("attachments"),
        &dir.join("attachments"),
    )?;
    Ok(Summary {
        messages,
        attachments,
    })
}

/// Puts the backup in `dir` in place of the service's store.
pub async fn restore(settings: &Settings, dir: &Path) -> Result<Summary, BackupError> {
    sqlite_only(settings)?;
    let source = dir.join("frontdesk.db");
    if !source.is_file() {
        return Err(BackupError::Refused(format!(
            "{} has no frontdesk.db: not a frontdesk backup",
            dir.display()
        )));
    }
    let listening = settings
        .listen
        .parse::<std::net::SocketAddr>()
        .ok()
        .is_some_and(|address| {
            std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(300))
                .is_ok()
        });
    if listening {
        return Err(BackupError::Refused(format!(
            "something is serving on {}: stop `frontdesk serve` before restoring",
            settings.listen
        )));
    }
    std::fs::create_dir_all(&settings.data_dir).map_err(io(&settings.data_dir))?;
    // Check the copy where it will live, under a name the service never opens.
    let staging_dir = settings.data_dir.join("restoring");
    let _ = std::fs::remove_dir_all(&staging_dir);
    std::fs::create_dir_all(&staging_dir).map_err(io(&staging_dir))?;
    let staged = staging_dir.join("frontdesk.db");
    std::fs::copy(&source, &staged).map_err(io(&staged))?;
    let check = Store::connect(&Store::sqlite_url(&staging_dir)).await?;
    let messages = check.message_count().await?;
    check.close().await;
    let live = settings.data_dir.join("frontdesk.db");
    if live.exists() {
        let kept = settings.data_dir.join(format!(
            "frontdesk.db.before-restore-{}",
            crate::store::now_ms()
        ));
        std::fs::rename(&live, &kept).map_err(io(&kept))?;
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(settings.data_dir.join(format!("frontdesk.db{suffix}")));
        let _ = std::fs::remove_file(staging_dir.join(format!("frontdesk.db{suffix}")));
    }
    std::fs::rename(&staged, &live).map_err(io(&live))?;
    let _ = std::fs::remove_dir_all(&staging_dir);
    let attachments = copy_missing(
        &dir.join("attachments"),
        &settings.data_dir.join("attachments"),
    )?;
    Ok(Summary {
        messages,
        attachments,
    })
}
