//! The owner's API for one customer's data (docs/inbox.md "Your customers'
//! data"): find contacts, export everything about a person as a zip, erase a
//! person. The contact id is the one `GET /api/conversations` shows as
//! `contact.id`; a person is that contact plus the contacts linked to it.
//!
//! Behind [`auth::require_api_auth`] like every `/api/` route (401 without
//! credentials, 403 for a cookie change without its CSRF token); the paths
//! join `/api/openapi.json` through [`ContactsDoc`]. Handlers call
//! `crate::privacy`, never SQL.

use super::api::ErrorBody;
use super::auth;
use super::AppState;
use crate::privacy::{self, PrivacyError};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The most contacts one search answers.
const FIND_LIMIT: i64 = 50;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/contacts", get(find_contacts))
        .route("/api/contacts/{id}/export", get(export_contact))
        .route("/api/contacts/{id}/erase", post(erase_contact))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_api_auth,
        ))
}

#[derive(OpenApi)]
#[openapi(
    paths(find_contacts, export_contact, erase_contact),
    components(schemas(ContactList, ContactFound, Erased))
)]
pub struct ContactsDoc;

fn error(status: StatusCode, code: &str, message: String) -> Response {
    if status.is_server_error() {
        tracing::error!(%message, "contact data request failed");
    }
    (
        status,
        Json(ErrorBody {
            error: code.into(),
            message,
        }),
    )
        .into_response()
}

fn failed(failure: PrivacyError) -> Response {
    match failure {
        PrivacyError::Store(store) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("store: {store}"),
        ),
        other => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            other.to_string(),
        ),
    }
}

fn no_contact(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such contact {id}"),
    )
}

#[derive(Deserialize, IntoParams)]
pub struct FindQuery {
    /// A phone number (matched by its digits), email, address or name.
    pub q: String,
}

/// One contact a search found.
#[derive(Serialize, ToSchema)]
pub struct ContactFound {
    pub id: String,
    pub channel: String,
    pub address: String,
    pub name: Option<String>,
    /// The contact this one is linked to (same person on another channel).
    pub linked_to: Option<String>,
    pub conversations: i64,
    pub messages: i64,
    pub last_message_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactList {
    pub contacts: Vec<ContactFound>,
}

/// Contacts whose phone number, email, address or name contains `q`.
#[utoipa::path(get, path = "/api/contacts", params(FindQuery), responses((status = 200, body = ContactList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn find_contacts(State(state): State<AppState>, Query(query): Query<FindQuery>) -> Response {
    if query.q.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "bad_request", "q is empty".into());
    }
    match state.store.find_contacts(&query.q, FIND_LIMIT).await {
        Ok(found) => Json(ContactList {
            contacts: found
                .into_iter()
                .map(|found| ContactFound {
                    id: found.contact.id,
                    channel: found.contact.channel,
                    address: found.contact.address,
                    name: found.contact.name,
                    linked_to: found.contact.linked_to,
                    conversations: found.conversations,
                    messages: found.messages,
                    last_message_ms: found.last_message_ms,
                })
                .collect(),
        })
        .into_response(),
        Err(store) => failed(store.into()),
    }
}

/// Everything stored about the person (linked contacts included): a zip
/// with `contact.json` and `attachments/<id>.<ext>`, the photos they sent.
#[utoipa::path(get, path = "/api/contacts/{id}/export", params(("id" = String, Path, description = "contact id (`contact.id` in the conversation lists)")),
    responses((status = 200, description = "a zip: contact.json and the photos", content_type = "application/zip", body = Vec<u8>), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn export_contact(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match privacy::export_contact(&state.store, &state.settings.data_dir, &id).await {
        Ok(Some(export)) => {
            // Ids are ours (hex); anything else never reaches a header.
            let name: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
            (
                [
                    (header::CONTENT_TYPE, "application/zip".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"contact-{name}.zip\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                ],
                export.zip,
            )
                .into_response()
        }
        Ok(None) => no_contact(&id),
        Err(failure) => failed(failure),
    }
}

/// What an erasure removed.
#[derive(Serialize, ToSchema)]
pub struct Erased {
    pub contacts: u64,
    pub conversations: u64,
    pub messages: u64,
    /// Replies that were waiting in the outbox and now are never sent.
    pub unsent_replies: u64,
    /// Photo files deleted from the data dir.
    pub photo_files: usize,
}

/// Erases the person (the contact and those linked to it) in one
/// transaction: contacts, conversations, messages, notes, forms, queue items,
/// unsent replies, events; then the photo files. Cannot be undone.
#[utoipa::path(post, path = "/api/contacts/{id}/erase", params(("id" = String, Path, description = "contact id (`contact.id` in the conversation lists)")),
    responses((status = 200, body = Erased), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn erase_contact(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match privacy::erase_contact(&state.store, &state.settings.data_dir, &id).await {
        Ok(Some(removed)) => Json(Erased {
            contacts: removed.rows.contacts,
            conversations: removed.rows.conversations,
            messages: removed.rows.messages,
            unsent_replies: removed.rows.unsent_replies,
            photo_files: removed.photo_files,
        })
        .into_response(),
        Ok(None) => no_contact(&id),
        Err(failure) => failed(failure),
    }
}
