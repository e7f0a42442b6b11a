//! A consistent copy of the SQLite store taken while `serve` runs
//! (`VACUUM INTO`: a reader in WAL mode, so webhooks keep being written), and
//! the count the backup tests compare. PostgreSQL is backed up with its own
//! tools (`pg_dump`); see README "Backups".

use super::{Backend, Store, StoreError};
use std::path::Path;

impl Store {
    /// Writes a compacted, self-contained copy of the database to `file`
    /// (which must not exist). SQLite only.
    pub async fn backup_to(&self, file: &Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::NotFound(
                "an online copy of a PostgreSQL store: use pg_dump (README \"Backups\")".into(),
            ));
        }
        sqlx::query("VACUUM INTO ?")
            .bind(file.display().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes every connection (SQLite checkpoints its WAL into the file).
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Messages stored, in and out (what a backup is checked against).
    pub async fn message_count(&self) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }
}
