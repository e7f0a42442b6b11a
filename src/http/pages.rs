//! The inbox pages: sign-in, first-run setup, sign-out, the inbox shell (one
//! HTML page for `/`, `/conversations/{id}` and `/knowledge`; the script picks
//! the view), its script and style sheet, and the public `/demo` shop page with
//! the web chat widget. Files are compiled into the binary. Every inbox page
//! carries a strict Content-Security-Policy: scripts, styles and connections
//! from this origin only, nothing inline, no framing.

use super::auth::{self, OWNER};
use super::AppState;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use std::net::SocketAddr;

/// The policy for the owner's pages: nothing inline, nothing from elsewhere.
pub const INBOX_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The demo shop page hosts the widget, which styles its own elements.
const DEMO_CSP: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("../../assets/inbox/index.html");
const LOGIN_HTML: &str = include_str!("../../assets/inbox/login.html");
const SETUP_HTML: &str = include_str!("../../assets/inbox/setup.html");
const DEMO_HTML: &str = include_str!("../../assets/inbox/demo.html");
const APP_JS: &str = include_str!("../../assets/inbox/app.js");
const APP_CSS: &str = include_str!("../../assets/inbox/app.css");

pub fn routes(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/", get(inbox_page))
        .route("/conversations/{id}", get(inbox_page))
        .route("/knowledge", get(inbox_page))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_page_session,
        ));
    Router::new()
        .merge(signed_in)
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/setup", get(setup_page).post(setup))
        .route("/demo", get(demo_page))
        .route("/inbox/app.js", get(app_js))
        .route("/inbox/app.css", get(app_css))
}

fn page(html: &'static str, csp: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn inbox_page() -> Response {
    page(INDEX_HTML, INBOX_CSP)
}

async fn login_page() -> Response {
    page(LOGIN_HTML, INBOX_CSP)
}

async fn setup_page() -> Response {
    page(SETUP_HTML, INBOX_CSP)
}

async fn demo_page() -> Response {
    page(DEMO_HTML, DEMO_CSP)
}

async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

fn redirect_with_cookie(to: &str, cookie: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    password: String,
}

/// Signs the owner in. Attempts are limited per account and per address
/// (a token bucket each); a wrong password goes back to the form.
async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let address = peer
        .map(|Extension(ConnectInfo(address))| address.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let account_ok = state.login_limiter.allow(&format!("account:{OWNER}"));
    let address_ok = state.login_limiter.allow(&format!("address:{address}"));
    if !account_ok || !address_ok {
        tracing::warn!(%address, "sign-in attempts limited");
        let mut response = Redirect::to("/login?error=rate").into_response();
        *response.status_mut() = StatusCode::SEE_OTHER;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    let stored = match state.store.password_hash(OWNER).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(%error, "reading the password failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let password = form.password;
    let matches = match stored {
        Some(hash) => tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false),
        None => false,
    };
    if !matches {
        tracing::warn!(%address, "a sign-in with a wrong password");
        return Redirect::to("/login?error=1").into_response();
    }
    match auth::start_session(&state, OWNER).await {
        Ok(cookie) => redirect_with_cookie("/", &cookie),
        Err(error) => {
            tracing::error!(%error, "starting a session failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// Ends the session (the CSRF token proves the page asked, not another site).
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let secure = state.public_base.starts_with("https://");
    let session = match auth::session_of(&state.store, &headers).await {
        Ok(session) => session,
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    if let Some(auth::Credentials::Session { csrf, id_hash, .. }) = session {
        let sent = serde_urlencoded::from_bytes::<LogoutForm>(&body)
            .ok()
            .and_then(|form| form.csrf)
            .or_else(|| {
                headers
                    .get(auth::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if !auth::constant_time_eq(&sent, &csrf) {
            return StatusCode::FORBIDDEN.into_response();
        }
        if let Err(error) = state.store.delete_session(&id_hash).await {
            tracing::error!(%error, "ending a session failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    redirect_with_cookie("/login", &auth::session_cookie(None, 0, secure))
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    password: String,
}

/// The first-run link: a valid one-time token may set the owner's password.
async fn setup(State(state): State<AppState>, Form(form): Form<SetupForm>) -> Response {
    if !state.login_limiter.allow("setup") {
        return Redirect::to("/login?error=rate").into_response();
    }
    let token_hash = auth::secret_hash(form.token.trim());
    match state
        .store
        .setup_token_matches(OWNER, &token_hash, auth::SETUP_TOKEN_MAX_AGE_MS)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Redirect::to("/login?error=setup").into_response(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
    if let Err(error) = auth::set_owner_password(&state.store, &form.password).await {
        return match error {
            auth::PasswordError::TooShort => {
                let to = format!("/setup?token={}&error=short", form.token.trim());
                Redirect::to(&to).into_response()
            }
            other => {
                tracing::error!(error = %other, "setting the password failed");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        };
    }
    tracing::info!("the owner's password was set from the setup link");
    match auth::start_session(&state, OWNER).await {
        Ok(cookie) => redirect_with_cookie("/", &cookie),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
