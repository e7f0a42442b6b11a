//! Who may use the inbox and the owner's API.
//!
//! - The owner's password is hashed with argon2id; only the PHC string is stored.
//!   With no password set, `serve` logs a one-time setup link instead of leaving
//!   the inbox open.
//! - A browser signs in at `POST /login` and gets a random session id in an
//!   HttpOnly, SameSite=Strict cookie (Secure when the public URL is https); the
//!   store keeps only its sha256. Each session has a CSRF token that every
//!   state-changing API request made with the cookie must echo in `X-CSRF-Token`.
//! - Tools send `Authorization: Bearer <token>` (`frontdesk token create`);
//!   tokens are stored as sha256 and can be revoked.
//! - [`require_api_auth`] is a layer over every `/api/` route but the OpenAPI
//!   document, so a route added later is protected without anyone remembering to.

use super::AppState;
use crate::store::{Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

/// The one account the inbox has today: the shop owner.
pub const OWNER: &str = "owner";
pub const SESSION_COOKIE: &str = "frontdesk_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A setup link works for a day after the server printed it.
pub const SETUP_TOKEN_MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// Shorter passwords are refused.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A fresh random secret: 32 bytes from the OS, hex.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex::encode(bytes)
}

/// sha256 hex: how session ids, setup and API tokens are stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Hashes and stores the owner's password (signs out every open session).
pub async fn set_owner_password(store: &Store, password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?
        .map_err(PasswordError::Hash)?;
    store.set_password_hash(OWNER, &hash).await?;
    Ok(())
}

/// With no password set, records a one-time setup token and returns the link
/// to print; `None` when a password exists.
pub async fn setup_link(store: &Store, public_base: &str) -> Result<Option<String>, StoreError> {
    if store.password_hash(OWNER).await?.is_some() {
        return Ok(None);
    }
    let token = random_secret();
    if !store.add_setup_token(OWNER, &secret_hash(&token)).await? {
        return Ok(None);
    }
    Ok(Some(format!("{public_base}/setup?token={token}")))
}

/// Creates a named API token and returns it (shown once; only its hash is kept).
pub async fn create_api_token(store: &Store, name: &str) -> Result<String, StoreError> {
    let token = format!("fd_{}", random_secret());
    store.create_api_token(name, &secret_hash(&token)).await?;
    Ok(token)
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Session {
        account: String,
        csrf: String,
        id_hash: String,
    },
    Token {
        name: String,
    },
}

impl Credentials {
    /// The name shown as the author of a reply or note.
    pub fn author(&self) -> String {
        match self {
            Credentials::Session { account, .. } => account.clone(),
            Credentials::Token { name } => format!("token:{name}"),
        }
    }
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// The browser session a request's cookie names, if it is live.
pub async fn session_of(
    store: &Store,
    headers: &HeaderMap,
) -> Result<Option<Credentials>, StoreError> {
    let Some(id) = cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = secret_hash(&id);
    Ok(store
        .session(&id_hash)
        .await?
        .map(|session| Credentials::Session {
            account: session.account,
            csrf: session.csrf,
            id_hash,
        }))
}

/// A bearer token or a session cookie, checked against the store.
pub async fn credentials_of(
    store: &Store,
    headers: &HeaderMap,
) -> Result<Option<Credentials>, StoreError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if let Some(token) = bearer {
        // A wrong token is a wrong token, even if a cookie came along.
        return Ok(store
            .api_token_name(&secret_hash(token.trim()))
            .await?
            .map(|name| Credentials::Token { name }));
    }
    session_of(store, headers).await
}

/// Compares a secret someone sent with ours in time that does not depend on
/// where they differ (only the length may show).
pub(super) fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

/// The layer over `/api/`: 401 without credentials, 403 for a cookie request
/// that changes something without its CSRF token. Puts the [`Credentials`]
/// into the request's extensions for the handlers.
pub async fn require_api_auth(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let credentials = match credentials_of(&state.store, request.headers()).await {
        Ok(Some(credentials)) => credentials,
        Ok(None) => {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "sign in, or send Authorization: Bearer <token>",
            )
        }
        Err(error) => {
            tracing::error!(%error, "checking credentials failed");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "try again shortly",
            );
        }
    };
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if let Credentials::Session { csrf, .. } = &credentials {
        let sent = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if !safe && !constant_time_eq(sent, csrf) {
            return json_error(
                StatusCode::FORBIDDEN,
                "csrf",
                "this request needs the session's X-CSRF-Token header",
            );
        }
    }
    request.extensions_mut().insert(credentials);
    next.run(request).await
}

/// The layer over the inbox pages: no live session → the sign-in page.
pub async fn require_page_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match session_of(&state.store, request.headers()).await {
        Ok(Some(_)) => next.run(request).await,
        Ok(None) => Redirect::to("/login").into_response(),
        Err(error) => {
            tracing::error!(%error, "checking the session failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// `Set-Cookie` for a new session (or, with `None`, one that clears it).
pub fn session_cookie(value: Option<&str>, max_age_seconds: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(value) => format!(
            "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_seconds}{secure}"
        ),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    }
}

/// Starts a session for the account; returns the cookie to set.
pub async fn start_session(state: &AppState, account: &str) -> Result<String, StoreError> {
    let days = state.settings.inbox.session_days.unwrap_or(14).max(1) as i64;
    let max_age = days * 24 * 3600;
    let id = random_secret();
    state
        .store
        .create_session(
            &secret_hash(&id),
            account,
            &random_secret(),
            crate::store::now_ms() + max_age * 1000,
        )
        .await?;
    Ok(session_cookie(
        Some(&id),
        max_age,
        state.public_base.starts_with("https://"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("flour-and-sugar").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("flour-and-sugar", &hash));
        assert!(!verify_password("flour-and-salt", &hash));
        assert!(!verify_password("flour-and-sugar", "not a hash"));
    }

    #[test]
    fn the_session_cookie_is_http_only_and_strict() {
        let cookie = session_cookie(Some("abc"), 60, true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.ends_with("; Secure"));
        assert!(!session_cookie(Some("abc"), 60, false).contains("Secure"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; frontdesk_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE).as_deref(),
            Some("xyz")
        );
    }
}
