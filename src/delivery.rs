//! The outbox worker: sends queued replies to the providers, several at once
//! (`delivery_concurrency`, so one hung send holds one slot, not every
//! conversation), one at a time per conversation in the order they were
//! written (the store's claim guarantees it across replicas).
//!
//! A failed send is classified by what it says about the provider:
//! - it cannot have taken the message (a 5xx or 429 answer, a refused
//!   connection): tried again after the `Retry-After` the provider gave, else
//!   after an exponential backoff with jitter, up to [`MAX_ATTEMPTS`]; once the
//!   provider answers a send again, the channel's rows waiting out our own
//!   backoff are tried at once;
//! - it may have taken it (a timeout or a connection cut after the request
//!   was written, a 2xx without a message id): never blindly resent. Twilio is
//!   asked first (its message list, [`channels::reconcile`]) once the send
//!   timeout has passed again, and the reply is marked sent if Twilio has it,
//!   sent if not. The Graph API and SMTP cannot be asked, so such a reply goes
//!   to a person (`delivery_unknown`), as a send cut by a crash does; a
//!   WhatsApp status that later names it settles it (`Store::settle_unknown_send`).
//!   An SMTP failure counts here only once the message is on the wire
//!   ([`channels::smtp`]); before that it cannot have been taken;
//! - it will fail the same way again (other 4xx): failed at once.
//!
//! The row's `template` (the JSON of a [`TemplateSend`]) and `tag` become the
//! [`OutboundMessage`]'s: a WhatsApp template, a Messenger `HUMAN_AGENT` reply.
//! A stored template that does not parse fails the send at once (retrying
//! cannot fix it).

use crate::channels::{self, OutboundMessage, SendError, TemplateSend};
use crate::domain::Channel;
use crate::http::AppState;
use crate::store::{now_ms, OutboxItem};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// After this many attempts a reply is marked failed (and stays visible in history).
pub const MAX_ATTEMPTS: i64 = 8;

/// How long a claimed row stays ours: a send that runs to its timeout, twice
/// over, and never under a minute. A row whose lease runs out while `sending`
/// was cut by a crash (see `Store::settle_interrupted_sends`).
pub fn send_lease_ms(send_timeout: Duration) -> i64 {
    (2 * send_timeout.as_millis() as i64 + 10_000).max(60_000)
}

/// Backoff before attempt `attempts + 1`: 2 s, 4 s, 8 s ... capped at 5 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    (2_000i64 << attempts.clamp(0, 20)).min(300_000)
}

/// `backoff` spread over its upper half, so replies that failed together in
/// an outage do not all come back at the same instant.
fn jittered(backoff: i64) -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(now_ms());
    let fraction = (hasher.finish() % 1_000) as i64;
    backoff / 2 + backoff / 2 * fraction / 1_000
}

/// Channels whose last send failed in a way worth retrying: the next success
/// there means the provider is back.
type Failing = Arc<Mutex<HashSet<Channel>>>;

pub async fn run_delivery_worker(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let timeout = Duration::from_millis(state.settings.send_timeout_ms.max(1));
    let client = match channels::http_client_with_timeout(timeout) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the HTTP client; replies will not be sent");
            return;
        }
    };
    let concurrency = state.settings.delivery_concurrency.max(1);
    let lease_ms = send_lease_ms(timeout);
    let failing = Failing::default();
    let mut in_flight = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let free = concurrency.saturating_sub(in_flight.len());
        if free > 0 {
            match state.store.claim_outbox(lease_ms, free).await {
                Ok(items) if !items.is_empty() => {
                    for item in items {
                        let (state, client, failing) =
                            (state.clone(), client.clone(), failing.clone());
                        in_flight.spawn(async move {
                            deliver(&state, &client, &failing, timeout, item).await
                        });
                    }
                }
                Ok(_) => {
                    // Another replica's interrupted sends, once their lease has run out.
                    if let Err(error) = state.store.settle_interrupted_sends().await {
                        tracing::error!(%error, "settling interrupted sends failed");
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "claiming replies failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        tokio::select! {
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = state.new_reply.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Sends already on the wire finish (each within the send timeout) and are recorded.
    while in_flight.join_next().await.is_some() {}
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
        outbox_id: Some(item.id.clone()),
    })
}

async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    failing: &Failing,
    timeout: Duration,
    item: OutboxItem,
) {
    let started_ms = now_ms();
    let outcome = match outbound_message(&item) {
        Ok(message) => match item.unconfirmed_since_ms {
            Some(since_ms) => match reconciled(state, client, &message, since_ms).await {
                Ok(Some(provider_id)) => {
                    tracing::info!(channel = %item.channel, "an unconfirmed send had reached the provider");
                    state.store.mark_sent(&item, &provider_id).await
                }
                Ok(None) => {
                    send_and_record(state, client, failing, timeout, &item, &message, started_ms)
                        .await
                }
                Err(error) => {
                    // The provider could not be asked: ask again later.
                    let next = now_ms() + jittered(backoff_ms(item.attempts - 1));
                    tracing::warn!(channel = %item.channel, error = %error.message, "could not check an unconfirmed send");
                    state
                        .store
                        .mark_unconfirmed(&item, &error.message, since_ms, next)
                        .await
                }
            },
            None => {
                send_and_record(state, client, failing, timeout, &item, &message, started_ms).await
            }
        },
        Err(error) => record_failure(state, failing, timeout, &item, error, started_ms).await,
    };
    if let Err(error) = outcome {
        tracing::error!(%error, "recording the send result failed; the lease will expire and it goes to a person");
    }
}

async fn send_and_record(
    state: &AppState,
    client: &reqwest::Client,
    failing: &Failing,
    timeout: Duration,
    item: &OutboxItem,
    message: &OutboundMessage,
    started_ms: i64,
) -> Result<(), crate::store::StoreError> {
    match send(state, client, message).await {
        Ok(provider_id) => {
            state.metrics.increment(&format!(
                "frontdesk_messages_out_total{{channel=\"{}\"}}",
                item.channel
            ));
            state.store.mark_sent(item, &provider_id).await?;
            let recovered = failing.lock().unwrap().remove(&item.channel);
            if recovered {
                let hurried = state.store.hurry_retries(item.channel).await?;
                if hurried > 0 {
                    tracing::info!(channel = %item.channel, hurried, "the provider answers again; retrying now");
                    state.new_reply.notify_one();
                }
            }
            Ok(())
        }
        Err(error) => record_failure(state, failing, timeout, item, error, started_ms).await,
    }
}

/// Whether the channel's provider can say if it has a message we may have
/// sent (see [`channels::reconcile`]).
fn can_reconcile(channel: Channel) -> bool {
    channel == Channel::Sms
}

async fn record_failure(
    state: &AppState,
    failing: &Failing,
    timeout: Duration,
    item: &OutboxItem,
    error: SendError,
    started_ms: i64,
) -> Result<(), crate::store::StoreError> {
    state.metrics.increment(&format!(
        "frontdesk_send_failures_total{{channel=\"{}\"}}",
        item.channel
    ));
    let attempts_left = item.attempts < MAX_ATTEMPTS;
    let backoff = jittered(backoff_ms(item.attempts - 1));
    if error.ambiguous {
        if can_reconcile(item.channel) && attempts_left {
            // Ask only once the provider has had a whole send timeout more to
            // finish the request, so a late one is listed too.
            let next = now_ms() + backoff.max(timeout.as_millis() as i64);
            tracing::warn!(channel = %item.channel, error = %error.message, "send may have reached the provider; checking before resending");
            return state
                .store
                .mark_unconfirmed(item, &error.message, started_ms, next)
                .await;
        }
        tracing::warn!(channel = %item.channel, error = %error.message, "send may have reached the provider; handed to a person");
        return state.store.mark_send_unknown(item, &error.message).await;
    }
    if error.retryable && attempts_left {
        failing.lock().unwrap().insert(item.channel);
        let (next, provider_asked) = match error.retry_after {
            Some(wait) => (now_ms() + wait.as_millis() as i64, true),
            None => (now_ms() + backoff, false),
        };
        tracing::warn!(channel = %item.channel, error = %error.message, retry_in_ms = next - now_ms(), "send failed");
        return state
            .store
            .mark_send_failure(item, &error.message, Some(next), provider_asked)
            .await;
    }
    tracing::warn!(channel = %item.channel, error = %error.message, "send failed for good");
    state
        .store
        .mark_send_failure(item, &error.message, None, false)
        .await
}

/// For a send that may have reached the provider: its id there, if the
/// provider lists one we have not already matched to another reply; `None`
/// when it does not have it (send it); an error when it cannot be asked.
async fn reconciled(
    state: &AppState,
    client: &reqwest::Client,
    message: &OutboundMessage,
    since_ms: i64,
) -> Result<Option<String>, SendError> {
    let twilio = &state.settings.twilio;
    let (Some(sid), Some(token), Some(from)) = (
        twilio.account_sid.as_deref(),
        twilio.auth_token.as_ref(),
        twilio.from.as_deref(),
    ) else {
        return Ok(None);
    };
    let base = twilio
        .base_url
        .as_deref()
        .unwrap_or(channels::twilio::DEFAULT_BASE_URL);
    let listed = channels::reconcile::twilio_sent_since(
        client,
        base,
        sid,
        token.expose(),
        from,
        message,
        since_ms,
    )
    .await?;
    for provider_id in listed {
        let known = state
            .store
            .provider_id_known(&provider_id)
            .await
            .map_err(|error| SendError::new(true, error.to_string()))?;
        if !known {
            return Ok(Some(provider_id));
        }
    }
    Ok(None)
}

/// The SMTP server of the email settings, with the send timeout for the
/// whole dialogue.
pub(crate) fn smtp_server(
    settings: &crate::config::Settings,
) -> Result<channels::smtp::SmtpServer, SendError> {
    let url = settings
        .email
        .smtp_url
        .as_ref()
        .ok_or_else(|| missing("FRONTDESK_EMAIL_SMTP_URL"))?;
    channels::smtp::SmtpServer::from_url(
        url.expose(),
        Duration::from_millis(settings.send_timeout_ms.max(1)),
    )
}

fn missing(what: &str) -> SendError {
    SendError::permanent(format!("{what} is not configured"))
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
            let server = smtp_server(settings)?;
            let built = channels::email::build_email(from, message)?;
            channels::smtp::send(&server, built).await
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
            unconfirmed_since_ms: None,
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

    #[test]
    fn jitter_stays_in_the_upper_half_of_the_backoff() {
        for _ in 0..100 {
            let wait = jittered(8_000);
            assert!((4_000..=8_000).contains(&wait), "{wait}");
        }
    }

    #[test]
    fn the_lease_outlives_a_send_that_runs_to_its_timeout() {
        assert_eq!(send_lease_ms(Duration::from_secs(30)), 70_000);
        assert_eq!(send_lease_ms(Duration::from_millis(1_500)), 60_000);
    }
}
