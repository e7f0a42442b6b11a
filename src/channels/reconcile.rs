//! Asking a provider whether it already has a message we may have sent: the
//! check before resending after an attempt whose outcome is unknown (a
//! timeout or a connection cut after the request was written).
//!
//! Only Twilio can answer: its message list can be filtered by recipient and
//! sender, and each entry carries the body and when it was created. The Graph
//! API (WhatsApp, Messenger, Instagram) has no way to list what a business
//! sent, and SMTP none to ask a server what it accepted, so their unknown
//! sends go to a person instead (see `delivery`). WhatsApp answers later on
//! its own: each send carries its outbox id, echoed in the message's status
//! webhooks, and such a status settles the hand-over (`store::unknown_sends`).

use super::{send_for_json, twilio, OutboundMessage, SendError};
use serde::Deserialize;

/// How far the provider's clock may be behind ours when comparing its
/// `date_created` with the time our attempt started.
const CLOCK_SLACK_MS: i64 = 60_000;

#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<ListedMessage>,
}

#[derive(Deserialize)]
struct ListedMessage {
    sid: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    date_created: Option<String>,
}

/// The sids of the messages Twilio lists as ours to `msg.to` from `from` with
/// `msg`'s body, created since `since_ms` (less the clock slack), newest
/// first. Failed and undelivered ones are left out: they did not reach the
/// customer, so sending again is right. An empty list means Twilio does not
/// have it.
///
/// The list is asked without a `DateSent` filter: that filter has a day's
/// resolution, and a message still `queued` has no `date_sent` at all.
pub async fn twilio_sent_since(
    client: &reqwest::Client,
    base_url: &str,
    account_sid: &str,
    auth_token: &str,
    from: &str,
    msg: &OutboundMessage,
    since_ms: i64,
) -> Result<Vec<String>, SendError> {
    let (url, form) = twilio::send_request(base_url, account_sid, from, msg);
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let body = field("Body");
    let request = client
        .get(url)
        .basic_auth(account_sid, Some(auth_token))
        .query(&[
            ("To", field("To")),
            ("From", field("From")),
            ("PageSize", "50".to_string()),
        ]);
    let answer = send_for_json("twilio list", request, |status, answer| {
        SendError::new(
            super::retryable_status(status),
            format!(
                "twilio: listing sent messages: HTTP {status}: {}",
                super::excerpt(answer)
            ),
        )
    })
    .await
    // Listing sends nothing: any failure to ask can be retried.
    .map_err(|error| SendError::new(true, error.message))?;
    let list: MessageList = serde_json::from_value(answer)
        .map_err(|err| SendError::new(true, format!("twilio: unreadable message list: {err}")))?;
    Ok(matching(list, &field("To"), &body, since_ms))
}

fn matching(list: MessageList, to: &str, body: &str, since_ms: i64) -> Vec<String> {
    list.messages
        .into_iter()
        .filter(|m| m.to == to && m.body == body)
        .filter(|m| !matches!(m.status.as_str(), "failed" | "undelivered" | "canceled"))
        .filter(|m| {
            m.date_created
                .as_deref()
                .and_then(|date| jiff::fmt::rfc2822::parse(date).ok())
                .is_none_or(|created| {
                    created.timestamp().as_millisecond() >= since_ms - CLOCK_SLACK_MS
                })
        })
        .map(|m| m.sid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(json: serde_json::Value) -> MessageList {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn only_recent_live_messages_with_the_same_body_and_recipient_match() {
        // 2026-12-02 04:40:23 UTC
        let since_ms = 1_796_186_423_000;
        let answer = list(serde_json::json!({"messages": [
            {"sid": "SM1", "to": "+15550001", "body": "See you at 9.", "status": "sent", "date_created": "Wed, 02 Dec 2026 04:40:24 +0000"},
            {"sid": "SM2", "to": "+15550001", "body": "Another text.", "status": "sent", "date_created": "Wed, 02 Dec 2026 04:40:24 +0000"},
            {"sid": "SM3", "to": "+15550001", "body": "See you at 9.", "status": "failed", "date_created": "Wed, 02 Dec 2026 04:40:24 +0000"},
            {"sid": "SM4", "to": "+15550001", "body": "See you at 9.", "status": "delivered", "date_created": "Tue, 01 Dec 2026 09:00:00 +0000"},
            {"sid": "SM5", "to": "+15550002", "body": "See you at 9.", "status": "queued", "date_created": "Wed, 02 Dec 2026 04:40:24 +0000"},
            {"sid": "SM6", "to": "+15550001", "body": "See you at 9.", "status": "queued", "date_created": null}
        ]}));
        assert_eq!(
            matching(answer, "+15550001", "See you at 9.", since_ms),
            vec!["SM1".to_string(), "SM6".to_string()]
        );
    }
}
