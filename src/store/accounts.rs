//! Who may open the inbox: the owner's password hash (hashing itself happens in
//! `http::auth`; only hashes are stored), one-time setup tokens, browser
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

    /// Sets the password hash, spends every setup token and signs out every
    /// session of the account (a new password locks out whoever had the old one).
    pub async fn set_password_hash(&self, account: &str, hash: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (name, password_hash, created_ms, updated_ms) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, updated_ms = excluded.updated_ms",
        )
        .bind(account)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for statement in [
            "DELETE FROM sessions WHERE account = $1",
            "DELETE FROM setup_tokens WHERE account = $1",
        ] {
            sqlx::query(statement)
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a one-time setup token (each replica that starts without a
    /// password prints its own; any of them works once). Returns false, and
    /// records nothing, when a password is already set.
    pub async fn add_setup_token(&self, account: &str, hash: &str) -> Result<bool, StoreError> {
        if self.password_hash(account).await?.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO setup_tokens (token_hash, account, created_ms) VALUES ($1, $2, $3)",
        )
        .bind(hash)
        .bind(account)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// Whether `hash` is a live setup token of the account: made within
    /// `max_age_ms`, while no password is set.
    pub async fn setup_token_matches(
        &self,
        account: &str,
        hash: &str,
        max_age_ms: i64,
    ) -> Result<bool, StoreError> {
        if self.password_hash(account).await?.is_some() {
            return Ok(false);
        }
        let row: Option<AnyRow> = sqlx::query(
            "SELECT account FROM setup_tokens WHERE token_hash = $1 AND account = $2 AND created_ms > $3",
        )
        .bind(hash)
        .bind(account)
        .bind(now_ms() - max_age_ms)
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
