//! Owner alerts: when a conversation starts needing a person (a queue item
//! opens), tell the owner on her own phone or mailbox, so she does not have to
//! keep the inbox open.
//!
//! The worker follows the store's event log from the latest event at boot (no
//! alerts for items that were already waiting). For each `queue` event it looks
//! up the conversation's open queue item, asks the store whether an alert may go
//! out (at most one per conversation per [`QUIET_MS`], atomically, so replicas
//! following the same log never both send), and sends:
//!
//! - an SMS through the Twilio settings to `alerts.sms_to`
//!   (`FRONTDESK_ALERTS_SMS_TO`), and/or
//! - an email through the SMTP settings to `alerts.email_to`
//!   (`FRONTDESK_ALERTS_EMAIL_TO`).
//!
//! The alert carries no more of the customer's words than the first line of
//! the queue item's summary, cut to [`MAX_EXCERPT_CHARS`], plus the inbox link
//! `{public_base}/conversations/{id}`. A failed send is logged and tried again
//! a couple of times if the provider says it may help, never more.

use crate::channels::{self, OutboundMessage, SendError};
use crate::domain::Channel;
use crate::http::AppState;
use crate::store::{now_ms, QueueItem, StoreError};
use std::time::Duration;
use tokio::sync::watch;

/// At most one alert per conversation in this long.
pub const QUIET_MS: i64 = 10 * 60 * 1000;
/// How often the event log is read.
pub const POLL: Duration = Duration::from_millis(500);
/// The most characters of the customer's message an alert repeats.
pub const MAX_EXCERPT_CHARS: usize = 100;
/// Events read per store call.
const BATCH: i64 = 200;
/// Tries per alert and channel, for failures the provider says may pass.
const ATTEMPTS: u32 = 3;

/// Follows the event log until `shutdown` turns true. Returns at once when no
/// alert destination is configured.
pub async fn run_alert_worker(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let alerts = &state.settings.alerts;
    if blank(&alerts.sms_to) && blank(&alerts.email_to) {
        return;
    }
    let client = match channels::http_client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the HTTP client; owner alerts are off");
            return;
        }
    };
    // Only what happens from now on: no alerts for items already waiting.
    let mut cursor = loop {
        match state.store.last_event_id().await {
            Ok(id) => break id,
            Err(error) => {
                tracing::error!(%error, "reading the event log failed; retrying");
                if pause(&mut shutdown, Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        let mut full_batch = false;
        match state.store.events_after(cursor, BATCH).await {
            Ok(events) => {
                full_batch = events.len() as i64 == BATCH;
                for event in events {
                    if event.kind == "queue" {
                        if let Some(conversation_id) = &event.conversation_id {
                            if let Err(error) = consider(&state, &client, conversation_id).await {
                                // Leave the cursor before this event: it is read again.
                                tracing::error!(%error, "checking for an owner alert failed");
                                full_batch = false;
                                break;
                            }
                        }
                    }
                    cursor = event.id;
                }
            }
            Err(error) => tracing::error!(%error, "reading the event log failed"),
        }
        if !full_batch && pause(&mut shutdown, POLL).await {
            break;
        }
    }
}

/// Sleeps for `how_long`; true when shutdown was asked for meanwhile.
async fn pause(shutdown: &mut watch::Receiver<bool>, how_long: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(how_long) => {}
        _ = shutdown.changed() => {}
    }
    *shutdown.borrow()
}

fn blank(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// A queue event for `conversation_id`: alert if an item is open and no alert
/// went out for the conversation lately. The sends run on their own task so a
/// slow provider does not hold up the log.
async fn consider(
    state: &AppState,
    client: &reqwest::Client,
    conversation_id: &str,
) -> Result<(), StoreError> {
    // A queue event also means "closed": then there is nothing open.
    let Some(item) = state.store.open_queue_item(conversation_id).await? else {
        return Ok(());
    };
    if !state
        .store
        .claim_alert(conversation_id, now_ms(), QUIET_MS)
        .await?
    {
        tracing::debug!(conversation_id, "owner alerted recently; not again");
        return Ok(());
    }
    let text = alert_text(&item, &state.public_base);
    let state = state.clone();
    let client = client.clone();
    tokio::spawn(async move { send_alerts(&state, &client, &item, &text).await });
    Ok(())
}

/// `frontdesk: a WhatsApp customer needs you (human_requested): can I talk to
/// someone` and, on the next line, the conversation's inbox link.
pub fn alert_text(item: &QueueItem, public_base: &str) -> String {
    let who = customer_kind(&item.channel);
    let excerpt = first_line(&item.summary, MAX_EXCERPT_CHARS);
    let link = format!(
        "{}/conversations/{}",
        public_base.trim_end_matches('/'),
        item.conversation_id
    );
    if excerpt.is_empty() {
        format!("frontdesk: {who} needs you ({})\n{link}", item.reason)
    } else {
        format!(
            "frontdesk: {who} needs you ({}): {excerpt}\n{link}",
            item.reason
        )
    }
}

/// `a WhatsApp customer`, `an SMS customer`, … (`a customer` for the unknown).
fn customer_kind(channel: &str) -> &'static str {
    match channel.parse::<Channel>() {
        Ok(Channel::Whatsapp) => "a WhatsApp customer",
        Ok(Channel::Messenger) => "a Messenger customer",
        Ok(Channel::Instagram) => "an Instagram customer",
        Ok(Channel::Sms) => "an SMS customer",
        Ok(Channel::Email) => "an email customer",
        Ok(Channel::Webchat) => "a web chat customer",
        Err(_) => "a customer",
    }
}

/// The first non-empty line of `text`, trimmed, cut to `limit` characters
/// (with `…` when cut).
pub fn first_line(text: &str, limit: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    match line.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
        None => line.to_string(),
    }
}

async fn send_alerts(state: &AppState, client: &reqwest::Client, item: &QueueItem, text: &str) {
    let alerts = &state.settings.alerts;
    if let Some(to) = alerts.sms_to.as_deref().filter(|to| !to.trim().is_empty()) {
        let message = OutboundMessage {
            channel: Channel::Sms,
            to: to.trim().to_string(),
            business_account: state.settings.twilio.from.clone().unwrap_or_default(),
            text: text.to_string(),
            idempotency_key: format!("alert:{}:sms", item.id),
            subject: None,
            in_reply_to: None,
            template: None,
            tag: None,
            outbox_id: None,
        };
        with_retries("sms", item, || {
            crate::delivery::send(state, client, &message)
        })
        .await;
    }
    if let Some(to) = alerts
        .email_to
        .as_deref()
        .filter(|to| !to.trim().is_empty())
    {
        let subject = text.lines().next().unwrap_or(text);
        with_retries("email", item, || {
            send_email(state, to.trim(), subject, text)
        })
        .await;
    }
}

/// Runs `attempt` until it succeeds, fails for good, or has failed
/// [`ATTEMPTS`] times; failures are logged.
async fn with_retries<F, Fut>(how: &str, item: &QueueItem, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, SendError>>,
{
    for n in 1..=ATTEMPTS {
        match attempt().await {
            Ok(_) => {
                tracing::info!(conversation_id = %item.conversation_id, via = how, "owner alerted");
                return;
            }
            Err(error) if error.retryable && n < ATTEMPTS => {
                tracing::warn!(via = how, error = %error.message, "owner alert failed; trying again");
                tokio::time::sleep(Duration::from_secs(2u64 << n)).await;
            }
            Err(error) => {
                tracing::warn!(conversation_id = %item.conversation_id, via = how, error = %error.message, "owner alert not sent");
                return;
            }
        }
    }
}

/// A plain-text email to the owner through the SMTP settings.
async fn send_email(
    state: &AppState,
    to: &str,
    subject: &str,
    text: &str,
) -> Result<String, SendError> {
    let email = &state.settings.email;
    let from = email
        .from
        .as_deref()
        .ok_or_else(|| SendError::permanent("FRONTDESK_EMAIL_FROM is not configured"))?;
    let server = crate::delivery::smtp_server(&state.settings)?;
    let from: lettre::message::Mailbox = from.parse().map_err(|err| {
        SendError::permanent(format!("email: invalid From address `{from}`: {err}"))
    })?;
    let to: lettre::message::Mailbox = to.parse().map_err(|err| {
        SendError::permanent(format!("email: invalid alert address `{to}`: {err}"))
    })?;
    let message = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(text.to_string())
        .map_err(|err| SendError::permanent(format!("email: cannot build the alert: {err}")))?;
    channels::smtp::send(&server, message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(channel: &str, reason: &str, summary: &str) -> QueueItem {
        QueueItem {
            id: "q1".into(),
            conversation_id: "c42".into(),
            channel: channel.into(),
            customer: "16505551234".into(),
            reason: reason.into(),
            priority: 3,
            summary: summary.into(),
            created_ms: 0,
        }
    }

    #[test]
    fn the_alert_names_the_channel_reason_first_line_and_link() {
        let text = alert_text(
            &item(
                "whatsapp",
                "human_requested",
                "can I talk to someone\nmy card number is 4111 1111 1111 1111",
            ),
            "https://shop.example/",
        );
        assert_eq!(
            text,
            "frontdesk: a WhatsApp customer needs you (human_requested): can I talk to someone\n\
             https://shop.example/conversations/c42"
        );
        assert!(!text.contains("4111"));
    }

    #[test]
    fn long_lines_are_cut_and_empty_summaries_left_out() {
        let long = "é".repeat(150);
        let cut = first_line(&long, MAX_EXCERPT_CHARS);
        assert_eq!(cut.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(first_line("\n  \n  second  \nthird", 100), "second");
        assert_eq!(
            alert_text(&item("sms", "complaint", " "), "http://127.0.0.1:8080"),
            "frontdesk: an SMS customer needs you (complaint)\nhttp://127.0.0.1:8080/conversations/c42"
        );
    }

    #[test]
    fn unknown_channels_are_just_a_customer() {
        assert_eq!(customer_kind("fax"), "a customer");
        assert_eq!(customer_kind("instagram"), "an Instagram customer");
    }
}
