//! One visitor's socket: the upgrade (origin checked, frame size capped), the
//! hello, the replay of what the visitor has not seen, then frames both ways
//! (each message checked, rate limited and stored before its `ack`) until the
//! visitor leaves, goes quiet or breaks the rules.

use super::frames::ClientFrame;
use super::identity::{accept_hello, is_token, Refusal, Session};
use super::{
    AppState, Author, ServerFrame, BUSINESS_ACCOUNT, DEAD_AFTER, HELLO_TIMEOUT, IDLE_TIMEOUT,
    MAX_FRAME_BYTES, MAX_TEXT_CHARS, PING_EVERY, REPLAY_LIMIT,
};
use crate::channels::InboundMessage;
use crate::domain::Channel;
use crate::store::{now_ms, Ingested, StoredMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::time::Instant;

pub(super) async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !state.chat_hub.config.origin_allowed(origin) {
        tracing::warn!(origin, "web chat socket from an origin that is not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| run_socket(state, socket))
}

/// The messages a reconnecting visitor has not seen: everything after
/// `last_seen` in `recent` (oldest first). Messages stamped in the same
/// millisecond as `last_seen` are sent again too (ties have no reliable
/// order); the widget drops ids it already shows. An unknown or missing
/// `last_seen` replays everything, which is how a reloaded page gets its history.
pub(super) fn unseen(recent: &[StoredMessage], last_seen: Option<&str>) -> Vec<StoredMessage> {
    let seen_at = last_seen.and_then(|id| recent.iter().find(|m| m.id == id));
    match seen_at {
        Some(seen) => recent
            .iter()
            .filter(|m| m.created_ms >= seen.created_ms && m.id != seen.id)
            .cloned()
            .collect(),
        None => recent.to_vec(),
    }
}

/// Text a visitor may send: trimmed, not empty, not too long.
pub(super) fn checked_text(text: &str) -> Result<&str, (&'static str, String)> {
    let text = text.trim();
    if text.is_empty() {
        return Err(("empty", "the message is empty".into()));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err((
            "too_long",
            format!("messages are limited to {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(text)
}

/// One open socket: the hello, the replay, then frames both ways until the
/// visitor leaves, goes quiet, or breaks the rules.
async fn run_socket(state: AppState, mut socket: WebSocket) {
    let first = match tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(Some(Ok(Message::Binary(_)))) => {
            close(&mut socket, 1003, "binary frames are not accepted").await;
            return;
        }
        Ok(_) => return,
        Err(_) => {
            close(&mut socket, 1008, "no hello").await;
            return;
        }
    };
    let accepted = match serde_json::from_str::<ClientFrame>(&first) {
        Ok(ClientFrame::Hello {
            visitor,
            last_seen,
            user,
        }) => accept_hello(&state.chat_hub.config, &visitor, last_seen, user.as_ref()),
        _ => Err(Refusal {
            code: "bad_frame",
            message: "the first frame must be a hello",
        }),
    };
    let session = match accepted {
        Ok(session) => session,
        Err(refusal) => {
            tracing::warn!(code = refusal.code, "web chat hello refused");
            let frame = ServerFrame::error(refusal.code, refusal.message, None);
            let _ = send(&mut socket, &frame).await;
            close(&mut socket, 1008, refusal.message).await;
            return;
        }
    };
    // Subscribe before reading the history: a reply pushed in between arrives
    // twice rather than never, and `sent_ids` drops the second copy.
    let mut subscription = state.chat_hub.subscribe(&session.address);
    let mut sent_ids = HashSet::new();
    let recent = state
        .store
        .recent_conversation_messages(
            Channel::Webchat,
            &session.address,
            BUSINESS_ACCOUNT,
            REPLAY_LIMIT,
        )
        .await;
    let recent = match recent {
        Ok(recent) => recent,
        Err(error) => {
            tracing::error!(%error, "web chat replay failed");
            let _ = send(
                &mut socket,
                &ServerFrame::error("unavailable", "try again shortly", None),
            )
            .await;
            close(&mut socket, 1011, "store unavailable").await;
            return;
        }
    };
    let replay = unseen(&recent, session.last_seen.as_deref());
    for stored in &replay {
        sent_ids.insert(stored.id.clone());
        if !send(&mut socket, &ServerFrame::from_stored(stored)).await {
            return;
        }
    }
    let ready = ServerFrame::Ready {
        replayed: replay.len(),
    };
    if !send(&mut socket, &ready).await {
        return;
    }

    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let mut last_message = Instant::now();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let reply = match serde_json::from_str::<ClientFrame>(&text) {
                            Ok(ClientFrame::Message { client_id, text }) => {
                                last_message = Instant::now();
                                receive(&state, &session, subscription.id, &client_id, &text).await
                            }
                            Ok(ClientFrame::Hello { .. }) => {
                                ServerFrame::error("bad_frame", "hello is sent once per socket", None)
                            }
                            Err(error) => ServerFrame::error("bad_frame", error.to_string(), None),
                        };
                        if let ServerFrame::Ack { id, .. } = &reply {
                            // The visitor's own message: never echo it back as a message frame.
                            sent_ids.insert(id.clone());
                        }
                        if !send(&mut socket, &reply).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        close(&mut socket, 1003, "binary frames are not accepted").await;
                        break;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            }
            pushed = subscription.frames.recv() => {
                let Some(frame) = pushed else {
                    close(&mut socket, 1013, "reconnect").await;
                    break;
                };
                if let ServerFrame::Message { id, .. } = &frame {
                    if !sent_ids.insert(id.clone()) {
                        continue;
                    }
                }
                if !send(&mut socket, &frame).await {
                    break;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    break;
                }
                if last_message.elapsed() > IDLE_TIMEOUT {
                    close(&mut socket, 1000, "idle").await;
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Handles one visitor message: checked, rate limited, persisted, then acknowledged.
async fn receive(
    state: &AppState,
    session: &Session,
    socket_id: u64,
    client_id: &str,
    text: &str,
) -> ServerFrame {
    if !is_token(client_id, 1, 64) {
        return ServerFrame::error(
            "bad_frame",
            "client_id must be 1 to 64 letters, digits, - or _",
            None,
        );
    }
    let text = match checked_text(text) {
        Ok(text) => text,
        Err((code, message)) => return ServerFrame::error(code, message, Some(client_id)),
    };
    if !state.limiter.allow(&format!("webchat:{}", session.address)) {
        return ServerFrame::error(
            "rate_limited",
            "too many messages; try again in a moment",
            Some(client_id),
        );
    }
    let at = now_ms();
    let message = InboundMessage {
        channel: Channel::Webchat,
        provider_message_id: format!("{}:{client_id}", session.address),
        sender: session.address.clone(),
        business_account: BUSINESS_ACCOUNT.into(),
        sender_name: None,
        text: text.to_string(),
        timestamp_ms: at,
        is_echo: false,
        thread_ref: None,
        subject: None,
        attachments: Vec::new(),
    };
    let (message, attachments) = crate::attachments::prepare(state, &message).await;
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
            // The visitor's other tabs show it too.
            let frame = ServerFrame::Message {
                id: message_id.clone(),
                from: Author::Customer,
                text: message.text.clone(),
                at,
            };
            state
                .chat_hub
                .push_except(&session.address, socket_id, &frame);
            Ok(Some(message_id))
        }
        // A resend after a reconnect: acknowledge the first copy, answer nothing.
        Ok(Ingested::Duplicate) => {
            state
                .metrics
                .increment("frontdesk_duplicate_webhooks_total");
            state
                .store
                .message_id_by_provider_id(Channel::Webchat, &message.provider_message_id)
                .await
        }
        Ok(other) => {
            tracing::error!(?other, "web chat message stored as something else");
            Ok(None)
        }
        Err(error) => Err(error),
    };
    match stored {
        Ok(Some(id)) => {
            tracing::info!(provider_id = %message.provider_message_id, "inbound web chat message");
            ServerFrame::Ack {
                client_id: client_id.to_string(),
                id,
            }
        }
        Ok(None) => ServerFrame::error("unavailable", "try again shortly", Some(client_id)),
        Err(error) => {
            tracing::error!(%error, "storing a web chat message failed");
            ServerFrame::error("unavailable", "try again shortly", Some(client_id))
        }
    }
}

/// Sends one frame; false when the socket is gone.
async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> bool {
    let Ok(json) = serde_json::to_string(frame) else {
        return false;
    };
    socket.send(Message::Text(json.into())).await.is_ok()
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
