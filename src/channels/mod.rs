//! The messaging providers: the ONLY place that knows a provider's payloads,
//! signatures and send APIs.
//!
//! Each provider module turns a raw webhook into provider-neutral values
//! ([`Inbound`]: a customer's [`InboundMessage`] or a [`StatusUpdate`] about
//! something we sent) and turns an [`OutboundMessage`] into the provider's send
//! request:
//!
//! - [`whatsapp`] — WhatsApp Cloud API (Graph webhooks, `X-Hub-Signature-256`).
//! - [`meta`] — Messenger and Instagram (the same Graph webhook family).
//! - [`twilio`] — SMS through Twilio (form posts, `X-Twilio-Signature`).
//! - [`email`] — inbound email through Mailgun routes, replies over SMTP.
//! - [`graph`] — what the three Meta products share: the GET handshake, the
//!   signature check and the Graph send call.
//! - [`reconcile`] — asking Twilio whether a send whose answer was lost
//!   reached it.
//!
//! Everything here except the `send` functions is pure: no database, no clock,
//! no axum handlers. The HTTP layer reads the request, calls `verify_signature`
//! and `parse_*`, and stores what comes back; the delivery worker calls `send`.
//!
//! Sends the provider refuses because its messaging window has closed
//! (WhatsApp 131047, Twilio 63016, Messenger/Instagram 10/2018278) come back as
//! a non-retryable [`SendError`] in plain words that say what to do instead
//! (a WhatsApp template, a `HUMAN_AGENT` reply); the same words appear in the
//! [`StatusUpdate`] when the refusal arrives later as a failed status.
//!
//! Nothing is silently dropped: a customer message that is not text (an image,
//! a sticker, a voice note, a location, a reaction) becomes an
//! [`InboundMessage`] whose text is a bracketed marker such as `[image]`
//! (followed by the caption when the provider gives one), so the conversation
//! shows that the customer sent something and a person can look at it. A
//! medium the provider declares as an image is also listed in
//! [`InboundMessage::attachments`], saying where its bytes are
//! ([`AttachmentSource`]); the store swaps its marker for `[attachment:ID]`
//! and [`media`] fetches the bytes later, off the request path.
//! Events that are not customer messages and carry nothing we act on (read
//! receipts without a message id, "message deleted", typing indicators) are
//! skipped.

pub mod email;
pub mod graph;
pub mod media;
pub mod meta;
pub mod reconcile;
pub mod smtp;
pub mod twilio;
pub mod whatsapp;
pub mod window;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;

use crate::domain::Channel;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A message a customer (or, for echoes, the business itself) sent us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub channel: Channel,
    /// The provider's id for this message (wamid, mid, MessageSid, Message-ID):
    /// providers retry webhooks, and this is what makes a retry a no-op.
    pub provider_message_id: String,
    /// The customer's identity on the channel (WhatsApp wa_id, Messenger PSID,
    /// Instagram IGSID, E.164 phone, lower-cased email address). For an echo this
    /// is still the customer, so the echo lands in the customer's conversation.
    pub sender: String,
    /// Which of the business's numbers, pages or inboxes received it (WhatsApp
    /// phone_number_id, page id or Instagram account id, Twilio `To`, the email
    /// recipient): replies must go out from the same one.
    pub business_account: String,
    /// The name the customer shows on the channel, when the provider tells us.
    pub sender_name: Option<String>,
    /// The text, or a `[image]`-style marker for non-text content.
    pub text: String,
    /// When the provider says the message was sent, in ms since the Unix epoch.
    pub timestamp_ms: i64,
    /// Written by the business from the provider's own app (Messenger and
    /// Instagram echoes): a person has taken over, so the bot pauses.
    pub is_echo: bool,
    /// Email only: the Message-ID this one replies to, for threading.
    pub thread_ref: Option<String>,
    /// Email only: the subject line.
    pub subject: Option<String>,
    /// The pictures the customer sent with it, in the order of their markers
    /// in `text`.
    #[serde(default)]
    pub attachments: Vec<InboundAttachment>,
}

/// One picture a customer sent: which marker in the message text stands for
/// it, what the provider says it is, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundAttachment {
    /// The marker in [`InboundMessage::text`] it stands for (`[image]`,
    /// `[attachment]`); the store replaces the first one not yet replaced
    /// with `[attachment:ID]`.
    pub marker: String,
    /// The content type the provider declares, when it does (Messenger gives
    /// none: the download's `Content-Type` is used).
    pub content_type: Option<String>,
    pub source: AttachmentSource,
}

/// Where an attachment's bytes are, and so how [`media::fetch`] gets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttachmentSource {
    /// A WhatsApp media id: its URL comes from the Graph API (bearer token),
    /// and the URL is fetched with the same token.
    WhatsappMedia { media_id: String },
    /// A Messenger/Instagram attachment URL (signed, no auth).
    MetaUrl { url: String },
    /// A Twilio `MediaUrlN` (HTTP basic auth with the account SID and auth
    /// token; it redirects to the file).
    TwilioUrl { url: String },
    /// The bytes came in the request itself (email parts, web chat uploads).
    Inline {
        #[serde(skip)]
        bytes: Vec<u8>,
    },
}

impl AttachmentSource {
    /// (kind, reference) as the store keeps them.
    pub fn stored(&self) -> (&'static str, &str) {
        match self {
            AttachmentSource::WhatsappMedia { media_id } => ("whatsapp_media", media_id),
            AttachmentSource::MetaUrl { url } => ("meta_url", url),
            AttachmentSource::TwilioUrl { url } => ("twilio_url", url),
            AttachmentSource::Inline { .. } => ("inline", ""),
        }
    }

    /// The inverse of [`AttachmentSource::stored`] (inline bytes are not kept:
    /// they were written at ingest).
    pub fn from_stored(kind: &str, reference: &str) -> Option<AttachmentSource> {
        let reference = reference.to_string();
        match kind {
            "whatsapp_media" => Some(AttachmentSource::WhatsappMedia {
                media_id: reference,
            }),
            "meta_url" => Some(AttachmentSource::MetaUrl { url: reference }),
            "twilio_url" => Some(AttachmentSource::TwilioUrl { url: reference }),
            "inline" => Some(AttachmentSource::Inline { bytes: Vec::new() }),
            _ => None,
        }
    }
}

/// Whether a declared content type names a picture (`image/…`).
pub(crate) fn declares_image(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("image/"))
}

/// How far a message we sent has got. Providers report these out of order
/// (a late `sent` after `read`), so whoever stores them should only move forward:
/// `Sent` < `Delivered` < `Read`, with `Failed` final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Failed => "failed",
        }
    }
}

/// The provider's report on a message we sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub channel: Channel,
    /// The id the provider returned when we sent the message.
    pub provider_message_id: String,
    pub state: DeliveryState,
    /// The provider's reason, for `Failed` (e.g. `131047: Re-engagement message`).
    pub error: Option<String>,
    /// The outbox row id the send carried, echoed back by the provider
    /// (WhatsApp's `biz_opaque_callback_data`): it names the send even when
    /// we never learnt `provider_message_id` (the answer to the send was lost).
    #[serde(default)]
    pub outbox_id: Option<String>,
}

/// One thing a webhook told us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inbound {
    Message(InboundMessage),
    Status(StatusUpdate),
}

/// An approved WhatsApp message template, sent instead of free text once the
/// 24-hour customer-service window has closed. The store keeps it in the outbox
/// row as this JSON: `{"name", "language", "parameters": ["…"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSend {
    /// The template's name as approved in WhatsApp Manager.
    pub name: String,
    /// The language code it was approved in (`en_US`, `de`).
    pub language: String,
    /// The body's `{{1}}`, `{{2}}` … values, in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// A reply to send. The delivery worker builds it from the outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub channel: Channel,
    /// The customer: the `sender` of the message being answered.
    pub to: String,
    /// The number, page or inbox to send from: the `business_account` of the
    /// message being answered.
    pub business_account: String,
    pub text: String,
    /// Stable across retries of the same reply. Email uses it for the
    /// Message-ID so a retried send is recognisably the same message.
    pub idempotency_key: String,
    /// Email only: the subject of the message being answered (`Re: ` is added).
    pub subject: Option<String>,
    /// Email only: the Message-ID being answered (`thread_ref`'s counterpart).
    pub in_reply_to: Option<String>,
    /// WhatsApp only: send this template instead of `text` (which then only
    /// records what the customer will read).
    #[serde(default)]
    pub template: Option<TemplateSend>,
    /// Messenger and Instagram only: the message tag (`HUMAN_AGENT`) that lets a
    /// person answer up to 7 days after the customer's last message, when the
    /// 24-hour window has closed. `None` sends an ordinary response.
    #[serde(default)]
    pub tag: Option<String>,
    /// The outbox row this send is, for providers that echo an opaque string
    /// in their status callbacks (WhatsApp): a status then settles a send
    /// whose answer was lost. `None` for sends that are not outbox rows.
    #[serde(default)]
    pub outbox_id: Option<String>,
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The signature header is missing, garbled or does not match: answer 401
    /// or 403 and do nothing with the body.
    #[error("webhook signature is missing or does not match")]
    BadSignature,
    /// The signed timestamp is too old (or too far in the future): a replay.
    #[error("webhook timestamp is outside the accepted window")]
    StaleTimestamp,
    /// The body is not what the provider documents; the reason is fit for a
    /// 400 response and the log.
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

/// Why a send failed, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// True for 5xx, 429, refused connections and other failures where the
    /// provider cannot have taken the message; false for other 4xx (bad token,
    /// bad recipient, outside the messaging window), where the same request
    /// will fail the same way.
    pub retryable: bool,
    /// The request may have reached the provider and been taken (a timeout or
    /// a connection cut after it was written, a 2xx without the documented
    /// answer): sending again could reach the customer twice, so it is not
    /// retried blindly (see `delivery`).
    pub ambiguous: bool,
    /// The provider said when to try again (`Retry-After` on a 429 or 503).
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl SendError {
    pub(crate) fn new(retryable: bool, message: impl Into<String>) -> Self {
        SendError {
            retryable,
            ambiguous: false,
            retry_after: None,
            message: message.into(),
        }
    }

    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        SendError::new(false, message)
    }

    /// The request did not get an HTTP answer. A connection that was never
    /// made (refused, DNS, connect timeout) sent nothing and is safe to retry;
    /// a timeout or a reset after it was made may have delivered the request.
    pub(crate) fn transport(provider: &str, err: &reqwest::Error) -> Self {
        let message = format!("{provider}: request failed: {err}");
        if err.is_builder() {
            // A request that could not even be built will not build next time.
            return SendError::permanent(message);
        }
        if err.is_connect() {
            return SendError::new(true, message);
        }
        SendError::ambiguous(message)
    }

    /// The provider may have taken the message: neither retried nor failed.
    pub(crate) fn ambiguous(message: impl Into<String>) -> Self {
        SendError {
            ambiguous: true,
            ..SendError::new(false, message)
        }
    }

    /// The provider answered 2xx, so the message is probably on its way, but
    /// the answer is not what it documents. Retrying could send it twice,
    /// which is worse than not knowing its id.
    pub(crate) fn accepted_without_id(provider: &str, body: &str) -> Self {
        SendError::ambiguous(format!(
            "{provider}: accepted the message but the response has no message id: {}",
            excerpt(body)
        ))
    }
}

/// How long a send may take by default before it counts as failed
/// (`FRONTDESK_SEND_TIMEOUT_MS` changes it).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client for the `send` functions, with connect and total timeouts.
/// Build it once and share it: it pools connections.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    http_client_with_timeout(SEND_TIMEOUT)
}

/// [`http_client`] with another total timeout (the connect timeout is at most 10 s).
pub fn http_client_with_timeout(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .build()
}

/// Whether an HTTP status means "try again later" whatever the body says.
pub(crate) fn retryable_status(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
}

/// The wait a 429 or 503 asks for in `Retry-After`: whole seconds, or an
/// HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`) taken against `now_ms`. `None`
/// for other statuses, a missing or unreadable header, or a date in the past.
pub fn retry_after(
    status: reqwest::StatusCode,
    header: Option<&str>,
    now_ms: i64,
) -> Option<Duration> {
    if status != reqwest::StatusCode::TOO_MANY_REQUESTS
        && status != reqwest::StatusCode::SERVICE_UNAVAILABLE
    {
        return None;
    }
    let value = header?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait_ms = at.as_millisecond() - now_ms;
    (wait_ms > 0).then(|| Duration::from_millis(wait_ms as u64))
}

/// Sends `request` and returns the JSON body of a 2xx answer. A non-2xx answer
/// goes through `describe_error`, which knows the provider's error format.
pub(crate) async fn send_for_json(
    provider: &str,
    request: reqwest::RequestBuilder,
    describe_error: impl FnOnce(reqwest::StatusCode, &str) -> SendError,
) -> Result<serde_json::Value, SendError> {
    let response = request
        .send()
        .await
        .map_err(|err| SendError::transport(provider, &err))?;
    let status = response.status();
    let wait = retry_after(
        status,
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        crate::store::now_ms(),
    );
    let body = match response.text().await {
        Ok(body) => body,
        Err(err) if status.is_success() => {
            return Err(SendError::accepted_without_id(
                provider,
                &format!("(body unreadable: {err})"),
            ))
        }
        Err(_) => String::new(),
    };
    if !status.is_success() {
        let mut error = describe_error(status, &body);
        error.retry_after = wait;
        return Err(error);
    }
    serde_json::from_str(&body).map_err(|_| SendError::accepted_without_id(provider, &body))
}

/// The start of a provider's answer, for error messages and logs.
pub(crate) fn excerpt(text: &str) -> String {
    const LIMIT: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// A JSON reason for [`ChannelError::Malformed`].
pub(crate) fn malformed_json(err: serde_json::Error) -> ChannelError {
    ChannelError::Malformed(format!("invalid webhook JSON: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_long_bodies_on_a_char_boundary() {
        let long = "é".repeat(400);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 301);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("  short \n"), "short");
    }

    #[test]
    fn only_server_errors_rate_limits_and_timeouts_are_retryable_statuses() {
        use reqwest::StatusCode;
        for status in [500, 502, 503, 504, 429, 408] {
            assert!(retryable_status(StatusCode::from_u16(status).unwrap()));
        }
        for status in [400, 401, 403, 404, 409, 422] {
            assert!(!retryable_status(StatusCode::from_u16(status).unwrap()));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates_on_429_and_503_only() {
        use reqwest::StatusCode;
        let now = jiff::Timestamp::from_second(1_445_412_475).unwrap(); // 07:27:55 GMT
        let now_ms = now.as_millisecond();
        let limited = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(
            retry_after(limited, Some("2"), now_ms),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Wed, 21 Oct 2015 07:28:00 GMT"),
                now_ms
            ),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(limited, Some("Wed, 21 Oct 2015 07:27:00 GMT"), now_ms),
            None,
            "a date in the past asks for no wait"
        );
        assert_eq!(retry_after(limited, Some("soon"), now_ms), None);
        assert_eq!(retry_after(limited, None, now_ms), None);
        assert_eq!(
            retry_after(StatusCode::INTERNAL_SERVER_ERROR, Some("2"), now_ms),
            None
        );
    }

    #[test]
    fn delivery_states_serialise_in_lower_case() {
        assert_eq!(
            serde_json::to_string(&DeliveryState::Delivered).unwrap(),
            "\"delivered\""
        );
        assert_eq!(DeliveryState::Failed.as_str(), "failed");
    }
}
