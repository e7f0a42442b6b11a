//! Photos from the web chat: `POST /chat/upload`, a `multipart/form-data`
//! post (a CORS "simple" request, so the shop's page needs no preflight) with
//! the fields `visitor` (the token the socket's hello carries), `client_id`,
//! optionally `user_id` + `user_signature` (a verified signed-in user), and
//! the file part `photo`.
//!
//! The visitor is checked exactly like a hello, the body is capped at the
//! photo limit, and the photo is checked (declared type and first bytes)
//! before anything is stored: a refused photo answers 413 or 415 in plain
//! words and stores nothing, since the visitor is there to read why. A kept
//! photo is written, then ingested as a customer message whose text is its
//! `[attachment:ID]` marker, pushed to the visitor's open sockets and
//! answered by the pipeline like any other message. A resent `client_id`
//! answers with the first copy.

use super::webchat::{accept_hello, is_token, Author, ServerFrame, UserClaim, BUSINESS_ACCOUNT};
use super::AppState;
use crate::channels::{AttachmentSource, InboundAttachment, InboundMessage};
use crate::domain::Channel;
use crate::store::{now_ms, Ingested};
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/chat/upload", post(upload))
}

/// A JSON answer the embedding page may read (the token is in the body, not
/// a cookie, so any allowed origin may read its own answer).
fn answer(status: StatusCode, origin: Option<&str>, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    let allow = origin
        .and_then(|origin| HeaderValue::from_str(origin).ok())
        .unwrap_or(HeaderValue::from_static("*"));
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn refuse(status: StatusCode, origin: Option<&str>, code: &str, message: &str) -> Response {
    answer(status, origin, json!({ "error": code, "message": message }))
}

/// What the post carried.
#[derive(Default)]
struct Upload {
    visitor: String,
    client_id: String,
    user_id: Option<String>,
    user_signature: Option<String>,
    photo: Option<(Option<String>, Vec<u8>)>,
}

/// What went wrong reading an upload: the status to answer and why.
type UploadError = (StatusCode, String);

fn unreadable(e: axum::extract::multipart::MultipartError) -> UploadError {
    (super::body_status(&e, e.status()), e.body_text())
}

async fn read_upload(mut multipart: Multipart, max_bytes: usize) -> Result<Upload, UploadError> {
    let mut upload = Upload::default();
    while let Some(mut part) = multipart.next_field().await.map_err(unreadable)? {
        let name = part.name().unwrap_or("").to_string();
        if name == "photo" {
            let content_type = part.content_type().map(str::to_string);
            let mut bytes = Vec::new();
            while let Some(chunk) = part.chunk().await.map_err(unreadable)? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > max_bytes {
                    break; // refused as too large below; no need to read on
                }
            }
            upload.photo = Some((content_type, bytes));
            continue;
        }
        let value = part.text().await.map_err(unreadable)?;
        match name.as_str() {
            "visitor" => upload.visitor = value,
            "client_id" => upload.client_id = value,
            "user_id" => upload.user_id = Some(value),
            "user_signature" => upload.user_signature = Some(value),
            _ => {}
        }
    }
    Ok(upload)
}

async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let config = &state.chat_hub.config;
    if !config.origin_allowed(origin) {
        return refuse(StatusCode::FORBIDDEN, None, "origin", "origin not allowed");
    }
    let max_bytes = state.settings.attachments.max_bytes;
    let upload = match read_upload(multipart, max_bytes as usize).await {
        Ok(upload) => upload,
        Err((status, reason)) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(status, origin, "too_large", &reason)
        }
        Err((status, reason)) => return refuse(status, origin, "bad_upload", &reason),
    };
    let claim = match (upload.user_id, upload.user_signature) {
        (Some(id), Some(signature)) => Some(UserClaim { id, signature }),
        _ => None,
    };
    let session = match accept_hello(config, &upload.visitor, None, claim.as_ref()) {
        Ok(session) => session,
        Err(refusal) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                origin,
                refusal.code,
                refusal.message,
            )
        }
    };
    if !is_token(&upload.client_id, 1, 64) {
        let message = "client_id must be 1 to 64 letters, digits, - or _";
        return refuse(StatusCode::BAD_REQUEST, origin, "bad_upload", message);
    }
    let Some((content_type, bytes)) = upload.photo else {
        let message = "the post has no `photo` file part";
        return refuse(StatusCode::BAD_REQUEST, origin, "bad_upload", message);
    };
    if bytes.len() as u64 > max_bytes {
        let message = crate::channels::media::too_large(max_bytes);
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, origin, "too_large", &message);
    }
    if let Err(reason) = crate::attachments::check_image(content_type.as_deref(), &bytes) {
        let message = format!("That photo was not sent: {reason}.");
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            origin,
            "not_a_photo",
            &message,
        );
    }
    if !state.limiter.allow(&format!("webchat:{}", session.address)) {
        let message = "too many messages; try again in a moment";
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            origin,
            "rate_limited",
            message,
        );
    }
    let at = now_ms();
    let message = InboundMessage {
        channel: Channel::Webchat,
        provider_message_id: format!("{}:{}", session.address, upload.client_id),
        sender: session.address.clone(),
        business_account: BUSINESS_ACCOUNT.into(),
        sender_name: None,
        text: "[image]".into(),
        timestamp_ms: at,
        is_echo: false,
        thread_ref: None,
        subject: None,
        attachments: vec![InboundAttachment {
            marker: "[image]".into(),
            content_type,
            source: AttachmentSource::Inline { bytes },
        }],
    };
    let (message, attachments) = crate::attachments::prepare(&state, &message).await;
    let attachment_id = attachments.first().map(|a| a.id.clone());
    let stored = match state
        .ingest
        .ingest(message.clone(), attachments.clone())
        .await
    {
        Ok(Ingested::New { message_id, .. }) => {
            state
                .metrics
                .increment("frontdesk_messages_in_total{channel=\"webchat\"}");
            state.new_work.notify_one();
            let frame = ServerFrame::Message {
                id: message_id.clone(),
                from: Author::Customer,
                text: message.text.clone(),
                at,
            };
            state.chat_hub.push(&session.address, &frame);
            Ok(Some(message_id))
        }
        Ok(Ingested::Duplicate) => {
            crate::attachments::discard(&state, &attachments).await;
            state
                .store
                .message_id_by_provider_id(Channel::Webchat, &message.provider_message_id)
                .await
        }
        Ok(_) => Ok(None),
        Err(error) => {
            crate::attachments::discard(&state, &attachments).await;
            Err(error)
        }
    };
    match stored {
        Ok(Some(id)) => {
            tracing::info!(provider_id = %message.provider_message_id, "web chat photo");
            answer(
                StatusCode::OK,
                origin,
                json!({ "id": id, "attachment_id": attachment_id, "text": message.text }),
            )
        }
        Ok(None) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            origin,
            "unavailable",
            "try again shortly",
        ),
        Err(error) => {
            tracing::error!(%error, "storing a web chat photo failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                origin,
                "unavailable",
                "try again shortly",
            )
        }
    }
}

#[cfg(test)]
mod proptests;
