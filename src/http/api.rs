//! The owner's JSON API under `/api/` (FORMATS.md §8, docs/inbox.md): the
//! conversation lists, one conversation, replies, take-over / hand-back /
//! resolve, notes, canned replies, "what would the bot say?", the knowledge
//! status and the event stream. The inbox pages use exactly this API.
//!
//! Every route here sits behind [`auth::require_api_auth`] except
//! `/api/openapi.json`, which is generated from the handlers' annotations.
//! Handlers validate, call the store, and answer; they never run a model except
//! `POST /api/ask`, which runs it on a blocking thread.

use super::auth::{self, Credentials};
use super::AppState;
use crate::channels::window::{self, Window, HUMAN_AGENT_TAG};
use crate::config::{CannedReply, WhatsappTemplate};
use crate::domain::Channel;
use crate::store::{
    Attachment, ConversationSummary, HumanReply, InboxMessage, Note, StoreError, View,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The API's errors, each a status and a stable `error` code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no such {0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("store: {0}")]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            other => ApiError::Store(other),
        }
    }
}

/// The error body every failing API call answers with.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code, e.g. `whatsapp_window_closed`.
    pub error: String,
    /// The same in plain words.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, *code),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "API request failed");
        }
        let body = ErrorBody {
            error: code.to_string(),
            message: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The most messages one conversation view carries (the newest ones).
const HISTORY_LIMIT: i64 = 500;
const LIST_LIMIT: i64 = 200;
/// How often an event stream looks for new events in the store.
const EVENT_POLL: Duration = Duration::from_millis(250);

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/session", get(session))
        .route("/api/conversations", get(list_conversations))
        .route("/api/conversations/{id}", get(conversation))
        .route("/api/conversations/{id}/reply", post(reply))
        .route("/api/conversations/{id}/template", post(send_template))
        .route("/api/conversations/{id}/take-over", post(take_over))
        .route("/api/conversations/{id}/hand-back", post(hand_back))
        .route("/api/conversations/{id}/resolve", post(resolve))
        .route("/api/conversations/{id}/notes", post(add_note))
        .route("/api/conversations/{id}/read", post(mark_read))
        .route("/api/canned", get(canned))
        .route("/api/ask", post(ask))
        .route("/api/knowledge", get(knowledge))
        .route("/api/events", get(events))
        .route("/api/attachments/{id}", get(attachment))
        // Everything above needs credentials; what follows is public.
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_api_auth,
        ))
        .route("/api/openapi.json", get(openapi))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "frontdesk owner API",
        description = "The owner's inbox API (FORMATS.md §8). Every path but this document needs a session cookie (plus X-CSRF-Token on changes) or `Authorization: Bearer <token>`."
    ),
    paths(
        session,
        list_conversations,
        conversation,
        reply,
        send_template,
        take_over,
        hand_back,
        resolve,
        add_note,
        mark_read,
        canned,
        ask,
        knowledge,
        events,
        attachment,
        openapi
    ),
    components(schemas(ErrorBody, ConversationSummary, InboxMessage, Note, Window, Attachment))
)]
pub struct ApiDoc;

#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub account: String,
    /// Echo it in `X-CSRF-Token` on every change made with the cookie; `null` for tokens.
    pub csrf: Option<String>,
}

/// Who is signed in, and the CSRF token the page must send.
#[utoipa::path(get, path = "/api/session", responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
async fn session(Extension(credentials): Extension<Credentials>) -> Json<SessionInfo> {
    Json(match credentials {
        Credentials::Session { account, csrf, .. } => SessionInfo {
            account,
            csrf: Some(csrf),
        },
        Credentials::Token { name } => SessionInfo {
            account: format!("token:{name}"),
            csrf: None,
        },
    })
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// `needs_you` (open queue items, oldest wait first) or `all` (newest first; the default).
    pub view: Option<String>,
    /// Keeps conversations with a message, name or address containing this text.
    pub q: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<ConversationSummary>,
}

/// Needs you, or all conversations, optionally searched.
#[utoipa::path(get, path = "/api/conversations", params(ListQuery), responses((status = 200, body = ConversationList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_conversations(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<ConversationList>> {
    let view = match query.view.as_deref() {
        None | Some("all") => View::All,
        Some("needs_you") => View::NeedsYou,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "view must be needs_you or all, not `{other}`"
            )))
        }
    };
    let conversations = state
        .store
        .list_conversations(view, query.q.as_deref(), LIST_LIMIT)
        .await?;
    Ok(Json(ConversationList { conversations }))
}

#[derive(Serialize, ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub summary: ConversationSummary,
    /// Oldest first, across the customer's linked contacts.
    pub messages: Vec<InboxMessage>,
    pub notes: Vec<Note>,
    /// The provider's reply window; `null` for channels without one.
    pub window: Option<Window>,
    /// Approved WhatsApp templates (empty on other channels).
    #[schema(value_type = Vec<Object>)]
    pub templates: Vec<WhatsappTemplate>,
}

async fn load_summary(state: &AppState, id: &str) -> ApiResult<ConversationSummary> {
    state
        .store
        .conversation_summary(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("conversation {id}")))
}

async fn window_of(state: &AppState, summary: &ConversationSummary) -> ApiResult<Option<Window>> {
    let channel: Channel = summary
        .channel
        .parse()
        .map_err(|e: String| ApiError::Internal(e))?;
    let last = state.store.last_customer_message_ms(&summary.id).await?;
    Ok(window::window(channel, last, crate::store::now_ms()))
}

/// One conversation with its history, notes and reply window.
#[utoipa::path(get, path = "/api/conversations/{id}", params(("id" = String, Path, description = "conversation id")), responses((status = 200, body = ConversationDetail), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn conversation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversationDetail>> {
    let summary = load_summary(&state, &id).await?;
    let messages = state.store.inbox_messages(&id, HISTORY_LIMIT).await?;
    let notes = state.store.notes(&id).await?;
    let window = window_of(&state, &summary).await?;
    let templates = if summary.channel == Channel::Whatsapp.as_str() {
        state.settings.whatsapp.templates.clone()
    } else {
        Vec::new()
    };
    Ok(Json(ConversationDetail {
        summary,
        messages,
        notes,
        window,
        templates,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct TextBody {
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    pub message_id: String,
}

fn closed_window(channel: &str) -> ApiError {
    if channel == Channel::Whatsapp.as_str() {
        ApiError::Conflict {
            code: "whatsapp_window_closed",
            message: "WhatsApp allows free-form replies only within 24 hours of the customer's last message; send an approved template instead".into(),
        }
    } else {
        ApiError::Conflict {
            code: "messenger_window_closed",
            message:
                "more than 7 days since the customer's last message: Meta no longer allows a reply"
                    .into(),
        }
    }
}

/// A person's reply, sent on the customer's own channel through the outbox;
/// the person becomes the conversation's owner in the same transaction.
#[utoipa::path(post, path = "/api/conversations/{id}/reply", params(("id" = String, Path, description = "conversation id")), request_body = TextBody,
    responses((status = 202, body = Queued), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the provider's reply window is closed; nothing was queued", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn reply(
    State(state): State<AppState>,
    Extension(credentials): Extension<Credentials>,
    Path(id): Path<String>,
    Json(body): Json<TextBody>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::BadRequest("the reply is empty".into()));
    }
    let summary = load_summary(&state, &id).await?;
    let window = window_of(&state, &summary).await?;
    let mut tag = None;
    if let Some(window) = &window {
        if !window.open {
            return Err(closed_window(&summary.channel));
        }
        if window.needs_human_agent_tag {
            tag = Some(HUMAN_AGENT_TAG.to_string());
        }
    }
    let message_id = state
        .store
        .reply_as_human(
            &id,
            &HumanReply {
                text: text.to_string(),
                author: credentials.author(),
                template: None,
                tag,
            },
        )
        .await?;
    state.new_reply.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Queued { message_id })))
}

#[derive(Deserialize, ToSchema)]
pub struct TemplateBody {
    /// The name of a template declared in the settings (`[[whatsapp.templates]]`).
    pub name: String,
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// An approved WhatsApp template: what may be sent once the 24-hour window closed.
#[utoipa::path(post, path = "/api/conversations/{id}/template", params(("id" = String, Path, description = "conversation id")), request_body = TemplateBody,
    responses((status = 202, body = Queued), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn send_template(
    State(state): State<AppState>,
    Extension(credentials): Extension<Credentials>,
    Path(id): Path<String>,
    Json(body): Json<TemplateBody>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    let summary = load_summary(&state, &id).await?;
    if summary.channel != Channel::Whatsapp.as_str() {
        return Err(ApiError::BadRequest(
            "templates are for WhatsApp conversations".into(),
        ));
    }
    let template = state
        .settings
        .whatsapp
        .templates
        .iter()
        .find(|t| t.name == body.name)
        .ok_or_else(|| {
            ApiError::BadRequest(format!("no template named `{}` is configured", body.name))
        })?;
    if body.parameters.len() != template.parameters.len()
        || body.parameters.iter().any(|p| p.trim().is_empty())
    {
        return Err(ApiError::BadRequest(format!(
            "template `{}` takes {} parameter(s): {}",
            template.name,
            template.parameters.len(),
            template.parameters.join(", ")
        )));
    }
    let payload = serde_json::json!({
        "name": template.name,
        "language": template.language,
        "parameters": body.parameters,
    });
    let shown = if body.parameters.is_empty() {
        format!("[template {}]", template.name)
    } else {
        format!(
            "[template {}: {}]",
            template.name,
            body.parameters.join(" | ")
        )
    };
    let message_id = state
        .store
        .reply_as_human(
            &id,
            &HumanReply {
                text: shown,
                author: credentials.author(),
                template: Some(payload.to_string()),
                tag: None,
            },
        )
        .await?;
    state.new_reply.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Queued { message_id })))
}

/// A person takes the conversation: the bot writes nothing more to it.
#[utoipa::path(post, path = "/api/conversations/{id}/take-over", params(("id" = String, Path, description = "conversation id")), responses((status = 204), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn take_over(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.take_over(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The bot answers again; the conversation's open queue items are resolved.
#[utoipa::path(post, path = "/api/conversations/{id}/hand-back", params(("id" = String, Path, description = "conversation id")), responses((status = 204), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn hand_back(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.release_conversation(&id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Done: open queue items resolved, status `resolved`; the customer's next message goes to the bot.
#[utoipa::path(post, path = "/api/conversations/{id}/resolve", params(("id" = String, Path, description = "conversation id")), responses((status = 204), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn resolve(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.release_conversation(&id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct NoteCreated {
    pub note_id: String,
}

/// An internal note: seen by the team, never sent to the customer.
#[utoipa::path(post, path = "/api/conversations/{id}/notes", params(("id" = String, Path, description = "conversation id")), request_body = TextBody, responses((status = 201, body = NoteCreated), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn add_note(
    State(state): State<AppState>,
    Extension(credentials): Extension<Credentials>,
    Path(id): Path<String>,
    Json(body): Json<TextBody>,
) -> ApiResult<(StatusCode, Json<NoteCreated>)> {
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::BadRequest("the note is empty".into()));
    }
    let note_id = state
        .store
        .add_note(&id, &credentials.author(), text)
        .await?;
    Ok((StatusCode::CREATED, Json(NoteCreated { note_id })))
}

/// The owner has seen the conversation: its unread count becomes 0.
#[utoipa::path(post, path = "/api/conversations/{id}/read", params(("id" = String, Path, description = "conversation id")), responses((status = 204), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn mark_read(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.mark_read(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Canned {
    pub title: String,
    pub text: String,
    /// The `{field}` names in `text`, in order of first appearance.
    pub fields: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CannedList {
    pub canned: Vec<Canned>,
}

/// The `{field}` names of a canned reply, each once, in order.
pub fn fill_in_fields(text: &str) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !fields.iter().any(|f| f == name)
        {
            fields.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    fields
}

/// Canned replies from the settings (`[[inbox.canned]]`).
#[utoipa::path(get, path = "/api/canned", responses((status = 200, body = CannedList), (status = 401, body = ErrorBody)))]
async fn canned(State(state): State<AppState>) -> Json<CannedList> {
    let canned = state
        .settings
        .inbox
        .canned
        .iter()
        .map(|CannedReply { title, text }| Canned {
            title: title.clone(),
            fields: fill_in_fields(text),
            text: text.clone(),
        })
        .collect();
    Json(CannedList { canned })
}

#[derive(Deserialize, ToSchema)]
pub struct AskBody {
    pub message: String,
    /// The channel whose style the reply takes (default `webchat`).
    pub channel: Option<String>,
}

/// What the bot would answer, from the knowledge being served now (FORMATS.md §4); nothing is stored or sent.
#[utoipa::path(post, path = "/api/ask", request_body = AskBody, responses((status = 200, description = "the FORMATS.md §4 object", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn ask(
    State(state): State<AppState>,
    Json(body): Json<AskBody>,
) -> ApiResult<Json<serde_json::Value>> {
    if body.message.trim().is_empty() {
        return Err(ApiError::BadRequest("the message is empty".into()));
    }
    let channel: Channel = match body.channel.as_deref() {
        None => Channel::Webchat,
        Some(name) => name.parse().map_err(ApiError::BadRequest)?,
    };
    let assistant = state.assistant.current();
    let outcome = tokio::task::spawn_blocking(move || assistant.ask(&body.message, channel, &[]))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(outcome.to_ask_json()))
}

#[derive(Serialize, ToSchema)]
pub struct KnowledgeStatus {
    /// When the index being served was built (ms).
    pub loaded_ms: i64,
    /// Its entries (FAQ entries, menu items, sections, business details).
    pub entries: usize,
    /// The errors of the last attempt to reload, `path:line: …`; empty when it worked.
    pub errors: Vec<String>,
}

/// The knowledge being served and the errors of the last reload.
#[utoipa::path(get, path = "/api/knowledge", responses((status = 200, body = KnowledgeStatus), (status = 401, body = ErrorBody)))]
async fn knowledge(State(state): State<AppState>) -> Json<KnowledgeStatus> {
    let status = state.assistant.status();
    Json(KnowledgeStatus {
        loaded_ms: status.loaded_ms,
        entries: status.entries,
        errors: status.errors,
    })
}

#[derive(Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Start after this event id (as `Last-Event-ID` does); default: only new events.
    pub after: Option<i64>,
}

/// Server-Sent Events from the store's event log: `id:` is the event id,
/// `event:` its kind, `data:` `{"kind", "conversation_id", "created_ms"}`.
#[utoipa::path(get, path = "/api/events", params(EventsQuery, ("Last-Event-ID" = Option<i64>, Header, description = "resume after this id")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String), (status = 401, body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(query): Query<EventsQuery>,
) -> ApiResult<Response> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(query.after);
    let cursor = match resume {
        Some(id) => id,
        None => state.store.last_event_id().await?,
    };
    let store = state.store.clone();
    let shutdown = state.shutdown.clone();
    let stream = futures_util::stream::unfold(
        (cursor, std::collections::VecDeque::new(), shutdown),
        move |(mut cursor, mut pending, mut shutdown)| {
            let store = store.clone();
            async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        return Some((
                            Ok::<Event, std::convert::Infallible>(event),
                            (cursor, pending, shutdown),
                        ));
                    }
                    if *shutdown.borrow() {
                        return None;
                    }
                    match store.events_after(cursor, 200).await {
                        Ok(found) if !found.is_empty() => {
                            for event in found {
                                cursor = event.id;
                                let data = serde_json::json!({
                                    "kind": event.kind,
                                    "conversation_id": event.conversation_id,
                                    "created_ms": event.created_ms,
                                });
                                pending.push_back(
                                    Event::default()
                                        .id(event.id.to_string())
                                        .event(event.kind.clone())
                                        .data(data.to_string()),
                                );
                            }
                            continue;
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "reading events failed; retrying"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(EVENT_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// A photo a customer sent: the stored bytes with their checked content
/// type, never sniffed or run by the browser (`nosniff`, a sandboxing CSP).
/// 404 for an unknown id and for a photo that was not kept.
#[utoipa::path(get, path = "/api/attachments/{id}", params(("id" = String, Path, description = "attachment id")),
    responses((status = 200, description = "the photo's bytes", content_type = "image/*"), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn attachment(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let not_found = || ApiError::NotFound(format!("attachment {id}"));
    if !crate::attachments::is_attachment_id(&id) {
        return Err(not_found());
    }
    let stored = state.store.attachment(&id).await?.ok_or_else(not_found)?;
    let content_type = match (&stored.content_type, stored.is_stored()) {
        (Some(content_type), true) => content_type.clone(),
        _ => return Err(not_found()),
    };
    let path = crate::attachments::path_of(&state.settings.data_dir, &id);
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| {
            tracing::error!(error = %e, id = %stored.id, "a stored photo's file cannot be read");
            not_found()
        })?;
    use axum::http::header;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CONTENT_DISPOSITION, "inline".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// This document (public).
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "the OpenAPI 3 document", body = Object)))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// The whole API's document: these handlers and the contact-data ones.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.merge(super::api_contacts::ContactsDoc::openapi());
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_in_fields_are_listed_once_in_order() {
        assert_eq!(
            fill_in_fields("Hi {name}, your {item} is ready at {time}. Thanks {name}!"),
            vec!["name", "item", "time"]
        );
        assert!(fill_in_fields("no fields {} here { nor this }").is_empty());
    }

    #[test]
    fn the_openapi_document_lists_every_fixed_path() {
        let document = serde_json::to_value(document()).unwrap();
        for path in [
            "/api/conversations",
            "/api/conversations/{id}",
            "/api/conversations/{id}/reply",
            "/api/conversations/{id}/hand-back",
            "/api/conversations/{id}/take-over",
            "/api/ask",
            "/api/knowledge",
            "/api/events",
            "/api/contacts/{id}/export",
            "/api/contacts/{id}/erase",
        ] {
            assert!(document["paths"][path].is_object(), "{path} missing");
        }
    }
}
