//! The outbox worker: sends queued replies to the providers with retries and
//! exponential backoff. Each reply has an idempotency key (one per inbound
//! message), so it is written once; a send interrupted by a crash is retried
//! when its lease expires.
//!
//! The row's `template` (the JSON of a [`TemplateSend`]) and `tag` become the
//! [`OutboundMessage`]'s: a WhatsApp template, a Messenger `HUMAN_AGENT` reply.
//! A stored template that does not parse fails the send at once (retrying
//! cannot fix it).

use crate::channels::{self, OutboundMessage, SendError, TemplateSend};
use crate::domain::Channel;
use crate::http::AppState;
use crate::store::{now_ms, OutboxItem};
use std::time::Duration;
use tokio::sync::watch;

pub const SEND_LEASE_MS: i64 = 60_000;
/// After this many attempts a reply is marked failed (and stays visible in history).
pub const MAX_ATTEMPTS: i64 = 8;

/// Backoff before attempt `attempts + 1`: 2 s, 4 s, 8 s ... capped at 5 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    (2_000i64 << attempts.clamp(0, 20)).min(300_000)
}

pub async fn run_delivery_worker(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let client = match channels::http_client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the HTTP client; replies will not be sent");
            return;
        }
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        match state.store.claim_outbox(SEND_LEASE_MS).await {
            Ok(Some(item)) => deliver(&state, &client, item).await,
            Ok(None) => {
                // Another replica's interrupted sends, once their lease has run out.
                if let Err(error) = state.store.settle_interrupted_sends().await {
                    tracing::error!(%error, "settling interrupted sends failed");
                }
                tokio::select! {
                    _ = state.new_reply.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(error) => {
                tracing::error!(%error, "claiming a reply failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The message to send for an outbox row; an error when its stored template
/// is not the JSON the store is meant to keep.
pub fn outbound_message(item: &OutboxItem) -> Result<OutboundMessage, SendError> {
    let template = match item.template.as_deref() {
        Some(json) => Some(serde_json::from_str::<TemplateSend>(json).map_err(|err| {
            SendError::permanent(format!("the stored template is not valid: {err}"))
        })?),
        None => None,
    };
    Ok(OutboundMessage {
        channel: item.channel,
        to: item.recipient.clone(),
        business_account: item.business_account.clone(),
        text: item.text.clone(),
        idempotency_key: item.idempotency_key.clone(),
        subject: item.subject.clone(),
        in_reply_to: item.in_reply_to.clone(),
        template,
        tag: item.tag.clone(),
    })
}

async fn deliver(state: &AppState, client: &reqwest::Client, item: OutboxItem) {
    let result = match outbound_message(&item) {
        Ok(message) => send(state, client, &message).await,
        Err(error) => Err(error),
    };
    let outcome = match result {
        Ok(provider_id) => {
            state.metrics.increment(&format!(
                "frontdesk_messages_out_total{{channel=\"{}\"}}",
                item.channel
            ));
            state.store.mark_sent(&item, &provider_id).await
        }
        Err(error) => {
            let next = (error.retryable && item.attempts < MAX_ATTEMPTS)
                .then(|| now_ms() + backoff_ms(item.attempts));
            tracing::warn!(channel = %item.channel, error = %error.message, retry = next.is_some(), "send failed");
            state.metrics.increment(&format!(
                "frontdesk_send_failures_total{{channel=\"{}\"}}",
                item.channel
            ));
            state
                .store
                .mark_send_failure(&item, &error.message, next)
                .await
        }
    };
    if let Err(error) = outcome {
        tracing::error!(%error, "recording the send result failed; the lease will expire and it is retried");
    }
}

/// The SMTP transport of the email settings, with the send timeout.
pub(crate) fn smtp_transport(
    settings: &crate::config::Settings,
) -> Result<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, SendError> {
    let url = settings
        .email
        .smtp_url
        .as_ref()
        .ok_or_else(|| missing("FRONTDESK_EMAIL_SMTP_URL"))?;
    Ok(
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url.expose())
            .map_err(|e| SendError::permanent(format!("SMTP URL: {e}")))?
            .timeout(Some(channels::SEND_TIMEOUT))
            .build(),
    )
}

fn missing(what: &str) -> SendError {
    SendError {
        retryable: false,
        message: format!("{what} is not configured"),
    }
}

/// Sends one message on its channel with the configured credentials (the
/// owner alerts use it too).
pub(crate) async fn send(
    state: &AppState,
    client: &reqwest::Client,
    message: &OutboundMessage,
) -> Result<String, SendError> {
    let settings = &state.settings;
    match message.channel {
        Channel::Whatsapp => {
            let token = settings
                .whatsapp
                .access_token
                .as_ref()
                .ok_or_else(|| missing("FRONTDESK_WHATSAPP_ACCESS_TOKEN"))?;
            channels::whatsapp::send(
                client,
                &settings.graph_base_url,
                &settings.graph_api_version,
                token.expose(),
                message,
            )
            .await
        }
        Channel::Messenger | Channel::Instagram => {
            let token = settings
                .meta
                .page_access_token
                .as_ref()
                .ok_or_else(|| missing("FRONTDESK_META_PAGE_ACCESS_TOKEN"))?;
            channels::meta::send(
                client,
                &settings.graph_base_url,
                &settings.graph_api_version,
                token.expose(),
                message,
            )
            .await
        }
        Channel::Sms => {
            let twilio = &settings.twilio;
            let sid = twilio
                .account_sid
                .as_deref()
                .ok_or_else(|| missing("FRONTDESK_TWILIO_ACCOUNT_SID"))?;
            let token = twilio
                .auth_token
                .as_ref()
                .ok_or_else(|| missing("FRONTDESK_TWILIO_AUTH_TOKEN"))?;
            let from = twilio
                .from
                .as_deref()
                .ok_or_else(|| missing("FRONTDESK_TWILIO_FROM"))?;
            let base = twilio
                .base_url
                .as_deref()
                .unwrap_or(channels::twilio::DEFAULT_BASE_URL);
            channels::twilio::send(client, base, sid, token.expose(), from, message).await
        }
        Channel::Email => {
            let from = settings
                .email
                .from
                .as_deref()
                .ok_or_else(|| missing("FRONTDESK_EMAIL_FROM"))?;
            let transport = smtp_transport(settings)?;
            let built = channels::email::build_email(from, message)?;
            channels::email::send_smtp(&transport, built).await
        }
        // Pushed to the visitor's open sockets; an offline visitor gets it by
        // replay on reconnect, so this succeeds either way.
        Channel::Webchat => crate::http::webchat::push_reply(state, message).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(template: Option<&str>, tag: Option<&str>) -> OutboxItem {
        OutboxItem {
            id: "o1".into(),
            message_id: "m1".into(),
            idempotency_key: "reply:m0".into(),
            channel: Channel::Whatsapp,
            recipient: "16505551234".into(),
            business_account: "106540352242922".into(),
            text: "Hi Kerry, your order is ready.".into(),
            subject: None,
            in_reply_to: None,
            attempts: 1,
            template: template.map(str::to_string),
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn the_stored_template_and_tag_reach_the_message() {
        let message = outbound_message(&item(
            Some(r#"{"name":"order_ready","language":"en_US","parameters":["Kerry"]}"#),
            None,
        ))
        .unwrap();
        assert_eq!(
            message.template,
            Some(TemplateSend {
                name: "order_ready".into(),
                language: "en_US".into(),
                parameters: vec!["Kerry".into()],
            })
        );
        assert_eq!(message.tag, None);

        let tagged = outbound_message(&item(None, Some("HUMAN_AGENT"))).unwrap();
        assert_eq!(tagged.template, None);
        assert_eq!(tagged.tag.as_deref(), Some("HUMAN_AGENT"));
    }

    #[test]
    fn a_broken_stored_template_fails_without_retrying() {
        let error = outbound_message(&item(Some("{\"name\":"), None)).unwrap_err();
        assert!(!error.retryable);
        assert!(error.message.contains("template"), "{error}");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(0), 2_000);
        assert_eq!(backoff_ms(1), 4_000);
        assert_eq!(backoff_ms(30), 300_000);
    }
}
