//! Who may open the inbox: the owner's password hash (hashing itself happens in
//! `http::auth`; only hashes are stored), the one-time setup token, browser
//! sessions (by the hash of their id) and named API tokens (by hash).

use super::*;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: String,
    pub csrf: String,
    pub expires_ms: i64,
}

impl Store {
    /// The account's password hash (a PHC string), if a password was set.
    pub async fn password_hash(&self, account: &str) -> Result<Option<String>, StoreError> {
        let row: Option<AnyRow> = sqlx::query("SELECT password_hash FROM accounts WHERE name = $1")
            .bind(account)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|row| row.try_get::<Option<String>, _>("password_hash"))
            .transpose()?
            .flatten())
    }

    /// Sets the password hash, spends any setup token and signs out every
    /// session of the account (a new password locks out whoever had the old one).
    pub async fn set_password_hash(&self, account: &str, hash: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (name, password_hash, setup_token_hash, created_ms, updated_ms) VALUES ($1, $2, NULL, $3, $3) \
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, setup_token_hash = NULL, updated_ms = excluded.updated_ms",
        )
        .bind(account)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE account = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the hash of a one-time setup token, only while no password is set.
    /// Returns false when a password exists (no setup link is needed).
    pub async fn set_setup_token_hash(
        &self,
        account: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let row: Option<AnyRow> = sqlx::query(
            "INSERT INTO accounts (name, password_hash, setup_token_hash, created_ms, updated_ms) VALUES ($1, NULL, $2, $3, $3) \
             ON CONFLICT (name) DO UPDATE SET setup_token_hash = excluded.setup_token_hash, updated_ms = excluded.updated_ms \
             WHERE accounts.password_hash IS NULL RETURNING name",
        )
        .bind(account)
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Whether `hash` is the account's live setup token (no password set yet).
    pub async fn setup_token_matches(&self, account: &str, hash: &str) -> Result<bool, StoreError> {
        let row: Option<AnyRow> = sqlx::query(
            "SELECT name FROM accounts WHERE name = $1 AND setup_token_hash = $2 AND password_hash IS NULL",
        )
        .bind(account)
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    pub async fn create_session(
        &self,
        id_hash: &str,
        account: &str,
        csrf: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query("DELETE FROM sessions WHERE expires_ms < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, account, csrf, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(account)
        .bind(csrf)
        .bind(now)
        .bind(expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live (unexpired) session.
    pub async fn session(&self, id_hash: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<AnyRow> = sqlx::query(
            "SELECT account, csrf, expires_ms FROM sessions WHERE id_hash = $1 AND expires_ms > $2",
        )
        .bind(id_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Session {
                account: row.try_get("account")?,
                csrf: row.try_get("csrf")?,
                expires_ms: row.try_get("expires_ms")?,
            })
        })
        .transpose()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates (or replaces, un-revoking) the named API token.
    pub async fn create_api_token(&self, name: &str, hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (name, token_hash, created_ms, revoked_ms) VALUES ($1, $2, $3, NULL) \
             ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, created_ms = excluded.created_ms, revoked_ms = NULL",
        )
        .bind(name)
        .bind(hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes a token; false when there is no live token by that name.
    pub async fn revoke_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_ms = $2 WHERE name = $1 AND revoked_ms IS NULL",
        )
        .bind(name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The name of the live token with this hash.
    pub async fn api_token_name(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let row: Option<AnyRow> =
            sqlx::query("SELECT name FROM api_tokens WHERE token_hash = $1 AND revoked_ms IS NULL")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| row.try_get("name")).transpose()?)
    }
}
