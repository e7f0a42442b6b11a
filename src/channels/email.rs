//! Email: inbound through Mailgun routes ("forward to URL"), replies built here
//! and sent over SMTP by [`super::smtp`].
//!
//! Mailgun POSTs each received email as form fields: `sender` (envelope
//! sender), `from` (the From header), `recipient`, `subject`, `body-plain`,
//! `stripped-text` (the new text without the quoted history and signature),
//! `attachment-count`, the MIME headers under their own names (`Message-Id`,
//! `In-Reply-To`, `References`, also all together as JSON in `message-headers`),
//! and `timestamp`, `token`, `signature`: hex HMAC-SHA256 of `timestamp + token`
//! keyed by the webhook signing key. The body is url-encoded, or multipart when
//! the email has attachments; the HTTP layer decodes either into fields (the
//! signature covers those) and file parts, which [`attach_parts`] lists.
//!
//! Customers are identified by their lower-cased From address, so every email
//! from one person lands in one conversation. Replies are plain text with
//! `Re: <subject>`, `In-Reply-To` and `References`, so mail clients thread them.

use super::{AttachmentSource, ChannelError, InboundAttachment, InboundMessage};
use super::{OutboundMessage, SendError};
use crate::domain::Channel;
use hmac::{Hmac, Mac};
use lettre::message::{header::ContentType, Mailbox};
use sha2::{Digest, Sha256};

/// How far a signed `timestamp` may be from now before the request counts as a
/// replay (either way, to allow for clock skew).
pub const MAX_SIGNATURE_AGE_SECS: i64 = 15 * 60;

/// Checks Mailgun's webhook signature: `signature` must be the hex
/// HMAC-SHA256 of `timestamp` followed by `token`, keyed by the signing key,
/// and `timestamp` (Unix seconds) must be within [`MAX_SIGNATURE_AGE_SECS`] of
/// `now_secs`. Retried webhooks that fail the age check are refused; inside
/// the window the caller claims [`signed_pair`] in the store, so a replayed
/// post is refused too (and the dedupe on Message-ID stays as a second net).
pub fn verify_signature(
    signing_key: &[u8],
    timestamp: &str,
    token: &str,
    signature: &str,
    now_secs: i64,
) -> Result<(), ChannelError> {
    let claimed = hex::decode(signature.trim()).map_err(|_| ChannelError::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signing_key).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&claimed)
        .map_err(|_| ChannelError::BadSignature)?;
    let signed_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| ChannelError::BadSignature)?;
    // abs_diff: a signed i64::MIN must not overflow the subtraction.
    if now_secs.abs_diff(signed_at) > MAX_SIGNATURE_AGE_SECS.unsigned_abs() {
        return Err(ChannelError::StaleTimestamp);
    }
    Ok(())
}

/// [`verify_signature`] with the `timestamp`, `token` and `signature` taken
/// from the posted fields; a missing one is a bad signature.
pub fn verify_form(
    signing_key: &[u8],
    fields: &[(String, String)],
    now_secs: i64,
) -> Result<(), ChannelError> {
    let get = |name| field(fields, name).ok_or(ChannelError::BadSignature);
    verify_signature(
        signing_key,
        get("timestamp")?,
        get("token")?,
        get("signature")?,
        now_secs,
    )
}

/// The signed `timestamp` and `token` of a post, which must not be accepted
/// twice (the store remembers them); `None` when either is missing.
pub fn signed_pair(fields: &[(String, String)]) -> Option<(&str, &str)> {
    Some((field(fields, "timestamp")?, field(fields, "token")?))
}

/// The most `[attachment]` markers one email gets: `attachment-count` is the
/// sender's number, and a huge one must not become a huge text.
pub const MAX_ATTACHMENT_MARKERS: usize = 100;

/// A posted field by name. Mailgun spells MIME headers as they came
/// (`Message-Id`, `Message-ID`), so names compare case-insensitively.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// A MIME header: its own field, or else from the `message-headers` JSON
/// (`[["Name","value"],…]`).
fn header(fields: &[(String, String)], name: &str) -> Option<String> {
    if let Some(value) = field(fields, name).filter(|value| !value.trim().is_empty()) {
        return Some(value.trim().to_string());
    }
    let all: Vec<(String, String)> =
        serde_json::from_str(field(fields, "message-headers")?).ok()?;
    all.into_iter()
        .find(|(key, value)| key.eq_ignore_ascii_case(name) && !value.trim().is_empty())
        .map(|(_, value)| value.trim().to_string())
}

/// Parses a Mailgun route post (already decoded into fields) into a message.
/// The text is `stripped-text` when present (the reply without the quoted
/// thread), else `body-plain`; attachments add `[attachment]` markers.
pub fn parse_form(fields: &[(String, String)]) -> Result<InboundMessage, ChannelError> {
    let missing = |name: &str| ChannelError::Malformed(format!("missing field `{name}`"));
    let non_empty = |name: &str| field(fields, name).map(str::trim).filter(|v| !v.is_empty());

    let (sender_name, sender) = match non_empty("from") {
        Some(from) => split_mailbox(from),
        None => (
            None,
            non_empty("sender")
                .ok_or_else(|| missing("from"))?
                .to_string(),
        ),
    };
    if !sender.contains('@') {
        return Err(ChannelError::Malformed(format!(
            "sender `{sender}` is not an email address"
        )));
    }
    let recipient = non_empty("recipient").ok_or_else(|| missing("recipient"))?;
    // A route matching several addresses lists them comma-separated.
    let business_account = recipient
        .split(',')
        .next()
        .unwrap_or(recipient)
        .trim()
        .to_lowercase();
    let timestamp = non_empty("timestamp").ok_or_else(|| missing("timestamp"))?;
    let timestamp_ms = timestamp
        .parse::<i64>()
        .ok()
        .and_then(|seconds| seconds.checked_mul(1000))
        .ok_or_else(|| {
            ChannelError::Malformed(format!("timestamp `{timestamp}` is not Unix seconds"))
        })?;
    let subject = non_empty("subject").map(str::to_string);

    let mut parts: Vec<String> = non_empty("stripped-text")
        .or_else(|| non_empty("body-plain"))
        .map(str::to_string)
        .into_iter()
        .collect();
    let attachments: usize = non_empty("attachment-count")
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
        .min(MAX_ATTACHMENT_MARKERS);
    parts.extend(std::iter::repeat_n("[attachment]".to_string(), attachments));
    let text = if parts.is_empty() {
        "[empty message]".to_string()
    } else {
        parts.join(" ")
    };

    let provider_message_id = match header(fields, "Message-Id") {
        Some(id) => first_message_id(&id),
        // Every real mail has one, but a retried post must still dedupe: the
        // content (not the post's timestamp) names the message.
        None => content_id(fields),
    };
    let thread_ref = header(fields, "In-Reply-To")
        .map(|id| first_message_id(&id))
        .or_else(|| header(fields, "References").and_then(|ids| last_message_id(&ids)));

    Ok(InboundMessage {
        channel: Channel::Email,
        provider_message_id,
        sender,
        business_account,
        sender_name,
        text,
        timestamp_ms,
        is_echo: false,
        thread_ref,
        subject,
        attachments: Vec::new(),
    })
}

/// A file part of a multipart inbound post, as the HTTP layer decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// The form field's name: Mailgun names attachments `attachment-1` …
    /// `attachment-N`.
    pub field: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Lists the pictures among a multipart post's `attachment-N` parts on
/// `message`, each standing for one of its `[attachment]` markers (other
/// files keep their plain marker).
pub fn attach_parts(message: &mut InboundMessage, parts: Vec<FilePart>) {
    let mut parts: Vec<(u32, FilePart)> = parts
        .into_iter()
        .filter_map(|part| {
            let number = part.field.strip_prefix("attachment-")?.parse().ok()?;
            Some((number, part))
        })
        .collect();
    parts.sort_by_key(|(number, _)| *number);
    for (_, part) in parts {
        if !super::declares_image(part.content_type.as_deref()) {
            continue;
        }
        if !message.text.contains("[attachment]") {
            // `attachment-count` was missing: the marker is added.
            message.text = match message.text.as_str() {
                "[empty message]" => "[attachment]".into(),
                text => format!("{text} [attachment]"),
            };
        }
        message.attachments.push(InboundAttachment {
            marker: "[attachment]".into(),
            content_type: part.content_type,
            source: AttachmentSource::Inline { bytes: part.bytes },
        });
    }
}

/// `"Ann Lee" <Ann@Example.com>` → (Some("Ann Lee"), "ann@example.com").
fn split_mailbox(from: &str) -> (Option<String>, String) {
    if let (Some(open), Some(close)) = (from.rfind('<'), from.rfind('>')) {
        if open < close {
            let address = from[open + 1..close].trim().to_lowercase();
            let name = from[..open].trim().trim_matches('"').trim();
            return ((!name.is_empty()).then(|| name.to_string()), address);
        }
    }
    (None, from.trim().to_lowercase())
}

/// Every `<id>` in a header value, in order.
fn message_ids(value: &str) -> Vec<String> {
    value
        .split('<')
        .skip(1)
        .filter_map(|rest| rest.split_once('>'))
        .map(|(id, _)| format!("<{}>", id.trim()))
        .collect()
}

/// The first id of an In-Reply-To / Message-Id value, bracketed; a value
/// without brackets is taken whole.
fn first_message_id(value: &str) -> String {
    message_ids(value)
        .into_iter()
        .next()
        .unwrap_or_else(|| bracketed(value))
}

/// The last id of a References value: the message being replied to.
fn last_message_id(value: &str) -> Option<String> {
    let ids = message_ids(value);
    match ids.last() {
        Some(id) => Some(id.clone()),
        None => value.split_whitespace().last().map(bracketed),
    }
}

fn bracketed(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

fn content_id(fields: &[(String, String)]) -> String {
    let mut hasher = Sha256::new();
    for name in ["from", "recipient", "subject", "Date", "body-plain"] {
        hasher.update(field(fields, name).unwrap_or("").as_bytes());
        hasher.update([0]);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// The Message-ID of the reply with `idempotency_key`: the same key always gives
/// the same id, so a retried send is the same message to the recipient's server
/// and a later reply from the customer can be traced back to it.
pub fn message_id_for(idempotency_key: &str, domain: &str) -> String {
    let digest = hex::encode(Sha256::digest(idempotency_key.as_bytes()));
    format!("<frontdesk.{}@{domain}>", &digest[..32])
}

/// `Re: <subject>`, without stacking a second `Re:`.
fn reply_subject(subject: Option<&str>) -> String {
    match subject.map(str::trim).filter(|s| !s.is_empty()) {
        Some(subject)
            if subject
                .get(..3)
                .is_some_and(|p| p.eq_ignore_ascii_case("re:")) =>
        {
            subject.to_string()
        }
        Some(subject) => format!("Re: {subject}"),
        None => "Re: your message".to_string(),
    }
}

/// Builds the reply email from `from` (e.g. `Rosa's Bakery <hello@rosas.example>`)
/// to `msg.to`. Addresses that do not parse are a permanent error.
pub fn build_email(from: &str, msg: &OutboundMessage) -> Result<lettre::Message, SendError> {
    let from: Mailbox = from.parse().map_err(|err| {
        SendError::permanent(format!("email: invalid From address `{from}`: {err}"))
    })?;
    let to: Mailbox = msg.to.parse().map_err(|err| {
        SendError::permanent(format!("email: invalid recipient `{}`: {err}", msg.to))
    })?;
    let message_id = message_id_for(&msg.idempotency_key, from.email.domain());
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(reply_subject(msg.subject.as_deref()))
        .message_id(Some(message_id))
        .header(ContentType::TEXT_PLAIN);
    if let Some(parent) = msg
        .in_reply_to
        .as_deref()
        .filter(|id| !id.trim().is_empty())
    {
        let parent = bracketed(parent);
        builder = builder.in_reply_to(parent.clone()).references(parent);
    }
    builder
        .body(msg.text.clone())
        .map_err(|err| SendError::permanent(format!("email: cannot build the message: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"mailgun-signing-key";
    const TIMESTAMP: &str = "1749416383";
    const TOKEN: &str = "5f1b4c9a0e2d8f7a6b3c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f";
    /// Computed independently: python3 -c "import hmac,hashlib;
    /// print(hmac.new(b'mailgun-signing-key', b'1749416383' + b'5f1b…8e7f',
    /// hashlib.sha256).hexdigest())"
    const SIGNATURE: &str = "e6858cd6aa14abf2b5a43bc20879dc0acb3ec46150c4b841842593a3efe6977f";
    const NOW: i64 = 1_749_416_400;

    #[test]
    fn signature_matches_an_independently_computed_digest() {
        assert_eq!(
            verify_signature(KEY, TIMESTAMP, TOKEN, SIGNATURE, NOW),
            Ok(())
        );
    }

    #[test]
    fn bad_signatures_are_refused() {
        let mut flipped = SIGNATURE.to_string();
        flipped.replace_range(0..1, "f");
        for (timestamp, token, signature) in [
            (TIMESTAMP, TOKEN, flipped.as_str()),
            ("1749416384", TOKEN, SIGNATURE),
            (
                TIMESTAMP,
                "5f1b4c9a0e2d8f7a6b3c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7e",
                SIGNATURE,
            ),
            (TIMESTAMP, TOKEN, ""),
            (TIMESTAMP, TOKEN, "zz"),
            (TIMESTAMP, TOKEN, &SIGNATURE[..32]),
        ] {
            assert_eq!(
                verify_signature(KEY, timestamp, token, signature, NOW),
                Err(ChannelError::BadSignature),
                "{timestamp} {token} {signature}"
            );
        }
        assert_eq!(
            verify_signature(b"another-key", TIMESTAMP, TOKEN, SIGNATURE, NOW),
            Err(ChannelError::BadSignature)
        );
    }

    #[test]
    fn old_or_future_timestamps_are_replays() {
        let signed_at: i64 = TIMESTAMP.parse().unwrap();
        let ok_late = signed_at + MAX_SIGNATURE_AGE_SECS;
        assert_eq!(
            verify_signature(KEY, TIMESTAMP, TOKEN, SIGNATURE, ok_late),
            Ok(())
        );
        for now in [
            signed_at + MAX_SIGNATURE_AGE_SECS + 1,
            signed_at + 86_400,
            signed_at - MAX_SIGNATURE_AGE_SECS - 1,
        ] {
            assert_eq!(
                verify_signature(KEY, TIMESTAMP, TOKEN, SIGNATURE, now),
                Err(ChannelError::StaleTimestamp),
                "now {now}"
            );
        }
    }

    fn form(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// The fields of a real Mailgun route post (values changed).
    fn reply_post() -> Vec<(String, String)> {
        form(&[
            ("Content-Type", "multipart/alternative; boundary=\"000000000000a1b2c3\""),
            ("Date", "Sun, 8 Jun 2025 22:59:43 +0200"),
            ("From", "\"Ann Lee\" <Ann.Lee@Example.com>"),
            ("In-Reply-To", "<frontdesk.4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e@rosas.example>"),
            ("Message-Id", "<CAEz7B1p9x=Qh@mail.gmail.com>"),
            ("Mime-Version", "1.0"),
            ("Received", "by mail-lj1-f170.google.com with SMTP id 38308e7fff4ca"),
            ("References", "<CAEz7B1o0a@mail.gmail.com> <frontdesk.4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e@rosas.example>"),
            ("Subject", "Re: Birthday cake order"),
            ("To", "Rosa's Bakery <hello@rosas.example>"),
            ("attachment-count", "0"),
            ("body-html", "<div dir=\"ltr\">Great, can it say Happy 7th Mia?</div>"),
            ("body-plain", "Great, can it say Happy 7th Mia?\r\n\r\nOn Sun, 8 Jun 2025 Rosa's Bakery wrote:\r\n> Yes, we can do a chocolate cake for Saturday.\r\n"),
            ("from", "\"Ann Lee\" <Ann.Lee@Example.com>"),
            ("message-headers", "[[\"Received\", \"by mail-lj1-f170.google.com\"], [\"Message-Id\", \"<CAEz7B1p9x=Qh@mail.gmail.com>\"]]"),
            ("recipient", "hello@rosas.example"),
            ("sender", "ann.lee@example.com"),
            ("signature", SIGNATURE),
            ("stripped-html", "<div dir=\"ltr\">Great, can it say Happy 7th Mia?</div>"),
            ("stripped-signature", ""),
            ("stripped-text", "Great, can it say Happy 7th Mia?"),
            ("subject", "Re: Birthday cake order"),
            ("timestamp", TIMESTAMP),
            ("token", TOKEN),
        ])
    }

    #[test]
    fn a_reply_email_becomes_an_inbound_message() {
        assert_eq!(
            parse_form(&reply_post()).unwrap(),
            InboundMessage {
                channel: Channel::Email,
                provider_message_id: "<CAEz7B1p9x=Qh@mail.gmail.com>".into(),
                sender: "ann.lee@example.com".into(),
                business_account: "hello@rosas.example".into(),
                sender_name: Some("Ann Lee".into()),
                text: "Great, can it say Happy 7th Mia?".into(),
                timestamp_ms: 1_749_416_383_000,
                is_echo: false,
                thread_ref: Some(
                    "<frontdesk.4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e@rosas.example>".into()
                ),
                subject: Some("Re: Birthday cake order".into()),
                attachments: Vec::new(),
            }
        );
        assert_eq!(verify_form(KEY, &reply_post(), NOW), Ok(()));
    }

    #[test]
    fn body_plain_is_used_without_stripped_text_and_attachments_are_marked() {
        let mut fields = reply_post();
        fields.retain(|(name, _)| name != "stripped-text");
        for (name, value) in fields.iter_mut() {
            if name == "attachment-count" {
                *value = "1".into();
            }
        }
        let text = parse_form(&fields).unwrap().text;
        assert!(
            text.starts_with("Great, can it say Happy 7th Mia?\r\n\r\nOn Sun"),
            "{text}"
        );
        assert!(text.ends_with("[attachment]"), "{text}");

        let picture_only = form(&[
            ("from", "bob@example.com"),
            ("recipient", "hello@rosas.example"),
            ("Message-Id", "<1@example.com>"),
            ("attachment-count", "2"),
            ("timestamp", TIMESTAMP),
        ]);
        assert_eq!(
            parse_form(&picture_only).unwrap().text,
            "[attachment] [attachment]"
        );
    }

    #[test]
    fn threading_falls_back_to_the_last_reference_and_headers_json() {
        let fields = form(&[
            ("from", "Bob <bob@example.com>"),
            ("recipient", "hello@rosas.example"),
            ("References", "<a@example.com>\r\n <b@example.com>"),
            ("message-headers", "[[\"Message-ID\", \"<c@example.com>\"]]"),
            ("body-plain", "ping"),
            ("timestamp", TIMESTAMP),
        ]);
        let parsed = parse_form(&fields).unwrap();
        assert_eq!(parsed.thread_ref.as_deref(), Some("<b@example.com>"));
        assert_eq!(parsed.provider_message_id, "<c@example.com>");
        assert_eq!(parsed.subject, None);
    }

    #[test]
    fn a_mail_without_message_id_still_gets_a_stable_id() {
        let fields = form(&[
            ("from", "bob@example.com"),
            ("recipient", "hello@rosas.example"),
            ("body-plain", "ping"),
            ("timestamp", TIMESTAMP),
        ]);
        let mut retried = fields.clone();
        retried[3].1 = "1749416999".into();
        let first = parse_form(&fields).unwrap().provider_message_id;
        assert!(first.starts_with("sha256:"), "{first}");
        assert_eq!(first, parse_form(&retried).unwrap().provider_message_id);
    }

    #[test]
    fn malformed_posts_are_refused_with_a_reason() {
        let without = |name: &str| {
            let mut fields = reply_post();
            fields.retain(|(key, _)| !key.eq_ignore_ascii_case(name) && key != "sender");
            parse_form(&fields).unwrap_err()
        };
        assert!(matches!(without("from"), ChannelError::Malformed(r) if r.contains("`from`")));
        assert!(
            matches!(without("recipient"), ChannelError::Malformed(r) if r.contains("`recipient`"))
        );
        assert!(
            matches!(without("timestamp"), ChannelError::Malformed(r) if r.contains("`timestamp`"))
        );
        let not_an_address = form(&[
            ("from", "Ann Lee"),
            ("recipient", "x@y"),
            ("timestamp", TIMESTAMP),
        ]);
        assert!(
            matches!(parse_form(&not_an_address), Err(ChannelError::Malformed(r)) if r.contains("not an email address"))
        );
        assert_eq!(
            verify_form(KEY, &form(&[("token", TOKEN)]), NOW),
            Err(ChannelError::BadSignature)
        );
    }

    fn reply(in_reply_to: Option<&str>) -> OutboundMessage {
        OutboundMessage {
            channel: Channel::Email,
            to: "ann.lee@example.com".into(),
            business_account: "hello@rosas.example".into(),
            text: "Yes, we can write \"Happy 7th Mia\" on it.".into(),
            idempotency_key: "reply-31".into(),
            subject: Some("Re: Birthday cake order".into()),
            in_reply_to: in_reply_to.map(str::to_string),
            template: None,
            tag: None,
            outbox_id: None,
        }
    }

    #[test]
    fn reply_email_threads_under_the_customers_message() {
        let email = build_email(
            "Rosa's Bakery <hello@rosas.example>",
            &reply(Some("<CAEz7B1p9x=Qh@mail.gmail.com>")),
        )
        .unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        let expected_id = message_id_for("reply-31", "rosas.example");
        assert!(expected_id.starts_with("<frontdesk.") && expected_id.ends_with("@rosas.example>"));
        for line in [
            "Subject: Re: Birthday cake order\r\n".to_string(),
            "In-Reply-To: <CAEz7B1p9x=Qh@mail.gmail.com>\r\n".to_string(),
            "References: <CAEz7B1p9x=Qh@mail.gmail.com>\r\n".to_string(),
            format!("Message-ID: {expected_id}\r\n"),
            "To: ann.lee@example.com\r\n".to_string(),
            "Content-Type: text/plain; charset=utf-8\r\n".to_string(),
        ] {
            assert!(raw.contains(&line), "missing {line:?} in\n{raw}");
        }
        assert!(raw.contains("Happy 7th Mia"), "{raw}");
    }

    #[test]
    fn a_retried_reply_has_the_same_message_id() {
        let first = build_email("hello@rosas.example", &reply(None)).unwrap();
        let again = build_email("hello@rosas.example", &reply(None)).unwrap();
        let id =
            |email: &lettre::Message| email.headers().get_raw("Message-ID").unwrap().to_string();
        assert_eq!(id(&first), id(&again));
        let mut other = reply(None);
        other.idempotency_key = "reply-32".into();
        assert_ne!(
            id(&first),
            id(&build_email("hello@rosas.example", &other).unwrap())
        );
        let raw = String::from_utf8(first.formatted()).unwrap();
        assert!(!raw.contains("In-Reply-To"), "{raw}");
    }

    #[test]
    fn subjects_get_one_re_prefix() {
        assert_eq!(reply_subject(Some("Cake order")), "Re: Cake order");
        assert_eq!(reply_subject(Some("RE: Cake order")), "RE: Cake order");
        assert_eq!(reply_subject(Some("  ")), "Re: your message");
        assert_eq!(reply_subject(None), "Re: your message");
        assert_eq!(reply_subject(Some("Ré")), "Re: Ré");
        assert_eq!(reply_subject(Some("aé cake")), "Re: aé cake");
    }

    #[test]
    fn unparseable_addresses_are_permanent_errors() {
        let error = build_email("not an address", &reply(None)).unwrap_err();
        assert!(
            !error.retryable && error.message.contains("From"),
            "{error}"
        );
        let mut bad_to = reply(None);
        bad_to.to = "ann at example".into();
        assert!(
            !build_email("hello@rosas.example", &bad_to)
                .unwrap_err()
                .retryable
        );
    }
}
