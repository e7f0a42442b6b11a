//! Messenger and Instagram: the Graph "messaging" webhooks and the Send API.
//!
//! Both arrive as `{"object":"page"|"instagram","entry":[{"id":<page or IG
//! account id>,"messaging":[{"sender":{"id"},"recipient":{"id"},"timestamp":<ms>,
//! "message"|"delivery"|"read"|"reaction"|"postback":{…}}]}]}`. A customer is a
//! page-scoped id (PSID) on Messenger and an Instagram-scoped id (IGSID) on
//! Instagram; the business is the page or Instagram account id.
//!
//! Echoes: when the business writes from Messenger / Instagram itself, the
//! message comes back with `is_echo: true`, sender = the business and recipient =
//! the customer. We flip them so the echo lands in the customer's conversation,
//! and set [`InboundMessage::is_echo`] so the bot pauses. Replies the bot sent
//! through the Send API echo back too, with the `mid` that [`send`] returned:
//! whoever stores messages must recognise those ids as its own and not pause.
//!
//! Sends are `RESPONSE`s (within 24 hours of the customer's last message) or,
//! when [`OutboundMessage::tag`] is set, `MESSAGE_TAG` sends with that tag
//! (`HUMAN_AGENT`: a person answering within 7 days). A send refused because the
//! window has closed (error 10, subcode 2018278) comes back in plain words from
//! [`window_closed`], not retried.

pub use super::graph::{verify_handshake, verify_signature};

use super::{
    malformed_json, AttachmentSource, ChannelError, DeliveryState, Inbound, InboundAttachment,
    InboundMessage, OutboundMessage,
};
use super::{SendError, StatusUpdate};
use crate::domain::Channel;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Webhook {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    time: Option<i64>,
    /// Absent for subscriptions other than messaging (feed, comments).
    #[serde(default)]
    messaging: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    sender: Option<Party>,
    recipient: Option<Party>,
    timestamp: Option<i64>,
    message: Option<Message>,
    delivery: Option<Delivery>,
    read: Option<Read>,
    reaction: Option<Reaction>,
    postback: Option<Postback>,
}

#[derive(Deserialize)]
struct Party {
    id: String,
}

#[derive(Deserialize)]
struct Message {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    /// Instagram: the customer unsent the message.
    #[serde(default)]
    is_deleted: bool,
    #[serde(default)]
    attachments: Vec<Attachment>,
}

#[derive(Deserialize)]
struct Attachment {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Value,
}

#[derive(Deserialize)]
struct Delivery {
    #[serde(default)]
    mids: Vec<String>,
}

#[derive(Deserialize)]
struct Read {
    /// Instagram names the message read; Messenger only gives a watermark.
    mid: Option<String>,
}

#[derive(Deserialize)]
struct Reaction {
    mid: String,
    action: Option<String>,
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct Postback {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
}

/// Parses a Messenger (`object: "page"`) or Instagram (`object: "instagram"`)
/// webhook into customer messages (including echoes) and delivery statuses.
/// Messenger read receipts (a watermark, no message id) and unsent Instagram
/// messages are skipped.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Inbound>, ChannelError> {
    let webhook: Webhook = serde_json::from_slice(body).map_err(malformed_json)?;
    let channel = match webhook.object.as_str() {
        "page" => Channel::Messenger,
        "instagram" => Channel::Instagram,
        other => {
            return Err(ChannelError::Malformed(format!(
                "expected object `page` or `instagram`, got `{other}`"
            )))
        }
    };
    let mut found = Vec::new();
    for (entry_index, entry) in webhook.entry.into_iter().enumerate() {
        for (event_index, event) in entry.messaging.into_iter().enumerate() {
            let at = format!("entry[{entry_index}].messaging[{event_index}]");
            parse_event(channel, event, entry.time, &at, &mut found)?;
        }
    }
    Ok(found)
}

fn parse_event(
    channel: Channel,
    event: Event,
    entry_time: Option<i64>,
    at: &str,
    found: &mut Vec<Inbound>,
) -> Result<(), ChannelError> {
    let timestamp_ms = event.timestamp.or(entry_time).unwrap_or(0);
    let parties = || -> Result<(String, String), ChannelError> {
        match (&event.sender, &event.recipient) {
            (Some(sender), Some(recipient)) => Ok((sender.id.clone(), recipient.id.clone())),
            _ => Err(ChannelError::Malformed(format!(
                "{at}: a message needs `sender.id` and `recipient.id`"
            ))),
        }
    };
    let message = |provider_message_id: String,
                   customer: String,
                   business: String,
                   text: String,
                   is_echo: bool| {
        Inbound::Message(InboundMessage {
            channel,
            provider_message_id,
            sender: customer,
            business_account: business,
            // Graph webhooks carry no names; the profile API does, if wanted.
            sender_name: None,
            text,
            timestamp_ms,
            is_echo,
            thread_ref: None,
            subject: None,
            attachments: Vec::new(),
        })
    };

    if let Some(sent) = &event.message {
        if sent.is_deleted {
            tracing::debug!(mid = %sent.mid, "skipping unsent {channel} message");
            return Ok(());
        }
        let (sender, recipient) = parties()?;
        // An echo is written by the business: the customer is the recipient.
        let (customer, business) = if sent.is_echo {
            (recipient, sender)
        } else {
            (sender, recipient)
        };
        let text = message_text(sent);
        let mut item = message(sent.mid.clone(), customer, business, text, sent.is_echo);
        if let Inbound::Message(inbound) = &mut item {
            inbound.attachments = message_attachments(sent);
        }
        found.push(item);
    } else if let Some(postback) = &event.postback {
        // A tap on a button we sent: the button's title is what the customer "said".
        let (customer, business) = parties()?;
        let text = postback
            .title
            .clone()
            .or_else(|| postback.payload.clone())
            .unwrap_or_else(|| "[postback]".to_string());
        // Older postbacks have no mid; the customer and time identify the tap.
        let id = postback
            .mid
            .clone()
            .unwrap_or_else(|| format!("postback:{customer}:{timestamp_ms}"));
        found.push(message(id, customer, business, text, false));
    } else if let Some(reaction) = &event.reaction {
        let (customer, business) = parties()?;
        let removed = reaction.action.as_deref() == Some("unreact");
        let text = match (&reaction.emoji, removed) {
            (_, true) => "[reaction removed]".to_string(),
            (Some(emoji), false) if !emoji.is_empty() => format!("[reaction {emoji}]"),
            _ => "[reaction]".to_string(),
        };
        // A reaction has no id of its own; it is about `mid`.
        let id = format!("reaction:{}:{customer}:{timestamp_ms}", reaction.mid);
        found.push(message(id, customer, business, text, false));
    } else if let Some(delivery) = &event.delivery {
        for mid in &delivery.mids {
            found.push(Inbound::Status(StatusUpdate {
                channel,
                outbox_id: None,
                provider_message_id: mid.clone(),
                state: DeliveryState::Delivered,
                error: None,
            }));
        }
    } else if let Some(read) = &event.read {
        match &read.mid {
            Some(mid) => found.push(Inbound::Status(StatusUpdate {
                channel,
                outbox_id: None,
                provider_message_id: mid.clone(),
                state: DeliveryState::Read,
                error: None,
            })),
            None => tracing::debug!("skipping {channel} read watermark without a mid"),
        }
    } else {
        tracing::debug!("skipping {channel} event of a kind we do not handle");
    }
    Ok(())
}

/// The pictures among the attachments (not stickers), by their signed URL.
fn message_attachments(message: &Message) -> Vec<InboundAttachment> {
    message
        .attachments
        .iter()
        .filter(|a| a.kind == "image" && a.payload.get("sticker_id").is_none())
        .filter_map(|a| a.payload.get("url")?.as_str())
        .map(|url| InboundAttachment {
            marker: "[image]".into(),
            content_type: None,
            source: AttachmentSource::MetaUrl {
                url: url.to_string(),
            },
        })
        .collect()
}

/// The text, followed by a marker per attachment (`[image]`, `[sticker]`, …).
fn message_text(message: &Message) -> String {
    let mut parts: Vec<String> = message
        .text
        .iter()
        .filter(|text| !text.trim().is_empty())
        .cloned()
        .collect();
    for attachment in &message.attachments {
        // Messenger stickers (the thumbs-up too) are images with a sticker_id.
        let kind = if attachment.payload.get("sticker_id").is_some() {
            "sticker"
        } else {
            attachment.kind.as_str()
        };
        parts.push(format!("[{kind}]"));
    }
    if parts.is_empty() {
        "[unsupported]".to_string()
    } else {
        parts.join(" ")
    }
}

/// The URL and JSON body of a text reply through the Send API (the page access
/// token goes in the `Authorization` header, see [`send`]).
pub fn send_request(base_url: &str, api_version: &str, msg: &OutboundMessage) -> (String, Value) {
    let url = format!(
        "{}/{}/me/messages",
        base_url.trim_end_matches('/'),
        api_version
    );
    let body = match &msg.tag {
        // A person answering after the 24-hour window, within 7 days.
        Some(tag) => json!({
            "recipient": { "id": msg.to },
            "messaging_type": "MESSAGE_TAG",
            "tag": tag,
            "message": { "text": msg.text },
        }),
        // RESPONSE: a reply within 24 hours of the customer's message.
        None => json!({
            "recipient": { "id": msg.to },
            "messaging_type": "RESPONSE",
            "message": { "text": msg.text },
        }),
    };
    (url, body)
}

/// The Graph error code and subcode of "This message is sent outside of
/// allowed window".
pub const OUTSIDE_WINDOW: (i64, i64) = (10, 2018278);

/// What the owner reads when Messenger or Instagram refuses a send because its
/// window has closed: 24 hours for an ordinary reply, 7 days for a tagged one.
pub fn window_closed(channel: Channel, tagged: bool) -> String {
    let provider = match channel {
        Channel::Instagram => "Instagram",
        _ => "Messenger",
    };
    let (code, subcode) = OUTSIDE_WINDOW;
    if tagged {
        format!(
            "{provider} refused it: more than 7 days since the customer's last message \
             ({code}/{subcode}). Wait for the customer to write again."
        )
    } else {
        format!(
            "{provider} refused it: more than 24 hours since the customer's last message \
             ({code}/{subcode}). Within 7 days of it, reply as a person (HUMAN_AGENT tag)."
        )
    }
}

/// Sends a text reply and returns its `message_id` (the mid that delivery
/// statuses and the echo will carry). `page_access_token` must be the token of
/// the page (or the page linked to the Instagram account) in
/// `msg.business_account`: `me` resolves to whoever owns the token.
pub async fn send(
    client: &reqwest::Client,
    base_url: &str,
    api_version: &str,
    page_access_token: &str,
    msg: &OutboundMessage,
) -> Result<String, SendError> {
    let provider = msg.channel.as_str();
    let (url, body) = send_request(base_url, api_version, msg);
    let refusal = |code, subcode| {
        ((code, subcode) == (OUTSIDE_WINDOW.0, Some(OUTSIDE_WINDOW.1)))
            .then(|| SendError::permanent(window_closed(msg.channel, msg.tag.is_some())))
    };
    let answer =
        super::graph::post(provider, client, &url, page_access_token, &body, refusal).await?;
    answer["message_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| SendError::accepted_without_id(provider, &answer.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{fake_provider, slow_fake_provider, test_client};
    use std::time::Duration;

    fn messenger(events: &str) -> String {
        format!(
            r#"{{"object":"page","entry":[{{"id":"109876543210987","time":1749416383200,"messaging":[{events}]}}]}}"#
        )
    }

    fn only_message(body: &str) -> InboundMessage {
        let parsed = parse_webhook(body.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 1, "{parsed:?}");
        match parsed.into_iter().next().unwrap() {
            Inbound::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn messenger_text_becomes_an_inbound_message() {
        let body = messenger(
            r#"{"sender":{"id":"6945882155431234"},"recipient":{"id":"109876543210987"},"timestamp":1749416383123,
                "message":{"mid":"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P","text":"Are you open today?"}}"#,
        );
        assert_eq!(
            only_message(&body),
            InboundMessage {
                channel: Channel::Messenger,
                provider_message_id: "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P".into(),
                sender: "6945882155431234".into(),
                business_account: "109876543210987".into(),
                sender_name: None,
                text: "Are you open today?".into(),
                timestamp_ms: 1_749_416_383_123,
                is_echo: false,
                thread_ref: None,
                subject: None,
                attachments: Vec::new(),
            }
        );
    }

    #[test]
    fn instagram_object_is_the_instagram_channel() {
        let body = r#"{"object":"instagram","entry":[{"time":1749416383200,"id":"17841405822304914","messaging":[
            {"sender":{"id":"1023456789012345"},"recipient":{"id":"17841405822304914"},"timestamp":1749416383001,
             "message":{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0","text":"do you ship to Canada?"}}]}]}"#;
        let message = only_message(body);
        assert_eq!(message.channel, Channel::Instagram);
        assert_eq!(message.sender, "1023456789012345");
        assert_eq!(message.business_account, "17841405822304914");
        assert_eq!(message.text, "do you ship to Canada?");
    }

    #[test]
    fn echo_is_filed_under_the_customer_and_marked() {
        let body = messenger(
            r#"{"sender":{"id":"109876543210987"},"recipient":{"id":"6945882155431234"},"timestamp":1749416399000,
                "message":{"is_echo":true,"app_id":263902037430900,"mid":"m_echo1","text":"I'll check with the kitchen and get back to you."}}"#,
        );
        let echo = only_message(&body);
        assert!(echo.is_echo);
        assert_eq!(
            echo.sender, "6945882155431234",
            "the customer, not the page"
        );
        assert_eq!(echo.business_account, "109876543210987");
        assert_eq!(
            echo.text,
            "I'll check with the kitchen and get back to you."
        );
    }

    #[test]
    fn attachments_become_markers_after_any_text() {
        let image = messenger(
            r#"{"sender":{"id":"694"},"recipient":{"id":"109"},"timestamp":1,
                "message":{"mid":"m_1","attachments":[{"type":"image","payload":{"url":"https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg"}}]}}"#,
        );
        assert_eq!(only_message(&image).text, "[image]");
        let sticker = messenger(
            r#"{"sender":{"id":"694"},"recipient":{"id":"109"},"timestamp":1,
                "message":{"mid":"m_2","attachments":[{"type":"image","payload":{"url":"https://scontent.xx.fbcdn.net/t39.1997-6/like.png","sticker_id":369239263222822}}],"sticker_id":369239263222822}}"#,
        );
        assert_eq!(only_message(&sticker).text, "[sticker]");
        let captioned = messenger(
            r#"{"sender":{"id":"694"},"recipient":{"id":"109"},"timestamp":1,
                "message":{"mid":"m_3","text":"where is this?","attachments":[{"type":"location","payload":{"coordinates":{"lat":52.52,"long":13.40}}}]}}"#,
        );
        assert_eq!(only_message(&captioned).text, "where is this? [location]");
    }

    #[test]
    fn reactions_and_postbacks_are_messages() {
        let reaction = messenger(
            r#"{"sender":{"id":"694"},"recipient":{"id":"109"},"timestamp":1749416400000,
                "reaction":{"reaction":"love","emoji":"❤","action":"react","mid":"m_reply7"}}"#,
        );
        let reaction = only_message(&reaction);
        assert_eq!(reaction.text, "[reaction ❤]");
        assert_eq!(
            reaction.provider_message_id,
            "reaction:m_reply7:694:1749416400000"
        );

        let postback = messenger(
            r#"{"sender":{"id":"694"},"recipient":{"id":"109"},"timestamp":1749416401000,
                "postback":{"title":"Opening hours","payload":"HOURS","mid":"m_pb1"}}"#,
        );
        let postback = only_message(&postback);
        assert_eq!(
            (
                postback.provider_message_id.as_str(),
                postback.text.as_str()
            ),
            ("m_pb1", "Opening hours")
        );
    }

    #[test]
    fn delivery_gives_a_status_per_mid_and_reads_need_a_mid() {
        let body = messenger(
            r#"{"sender":{"id":"694"},"recipient":{"id":"109"},"delivery":{"mids":["m_a","m_b"],"watermark":1749416383000}},
               {"sender":{"id":"694"},"recipient":{"id":"109"},"timestamp":1749416390000,"read":{"watermark":1749416383000}}"#,
        );
        let parsed = parse_webhook(body.as_bytes()).unwrap();
        assert_eq!(
            parsed,
            ["m_a", "m_b"].map(|mid| Inbound::Status(StatusUpdate {
                channel: Channel::Messenger,
                outbox_id: None,
                provider_message_id: mid.into(),
                state: DeliveryState::Delivered,
                error: None,
            }))
        );

        let instagram_read = r#"{"object":"instagram","entry":[{"time":1,"id":"178","messaging":[
            {"sender":{"id":"102"},"recipient":{"id":"178"},"timestamp":1749416390000,"read":{"mid":"aWdfZAG1faXRlbT"}}]}]}"#;
        let parsed = parse_webhook(instagram_read.as_bytes()).unwrap();
        assert_eq!(
            parsed,
            [Inbound::Status(StatusUpdate {
                channel: Channel::Instagram,
                outbox_id: None,
                provider_message_id: "aWdfZAG1faXRlbT".into(),
                state: DeliveryState::Read,
                error: None,
            })]
        );
    }

    #[test]
    fn unsent_instagram_messages_and_other_subscriptions_are_skipped() {
        let body = r#"{"object":"instagram","entry":[
            {"time":1,"id":"178","messaging":[{"sender":{"id":"102"},"recipient":{"id":"178"},"timestamp":1,"message":{"mid":"aWd","is_deleted":true}}]},
            {"time":1,"id":"178","changes":[{"field":"comments","value":{"id":"1","text":"nice"}}]}]}"#;
        assert_eq!(parse_webhook(body.as_bytes()).unwrap(), []);
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        let error = parse_webhook(b"not json").unwrap_err();
        assert!(
            matches!(&error, ChannelError::Malformed(reason) if reason.contains("invalid webhook JSON")),
            "{error}"
        );

        let error =
            parse_webhook(br#"{"object":"whatsapp_business_account","entry":[]}"#).unwrap_err();
        assert!(
            matches!(&error, ChannelError::Malformed(reason) if reason.contains("whatsapp_business_account")),
            "{error}"
        );

        let no_sender = messenger(
            r#"{"recipient":{"id":"109"},"timestamp":1,"message":{"mid":"m_1","text":"hi"}}"#,
        );
        let error = parse_webhook(no_sender.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, ChannelError::Malformed(reason) if reason.contains("entry[0].messaging[0]")),
            "{error}"
        );

        let no_mid = messenger(
            r#"{"sender":{"id":"694"},"recipient":{"id":"109"},"timestamp":1,"message":{"text":"hi"}}"#,
        );
        let error = parse_webhook(no_mid.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, ChannelError::Malformed(reason) if reason.contains("`mid`")),
            "{error}"
        );
    }

    #[test]
    fn signature_check_is_the_shared_graph_one() {
        use hmac::{Hmac, Mac};
        let body = messenger(
            r#"{"sender":{"id":"694"},"recipient":{"id":"109"},"timestamp":1,"message":{"mid":"m_1","text":"hi"}}"#,
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"app-secret").unwrap();
        mac.update(body.as_bytes());
        let header = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            verify_signature(b"app-secret", Some(&header), body.as_bytes()),
            Ok(())
        );
        assert_eq!(
            verify_signature(
                b"app-secret",
                Some(&header),
                body.replace("hi", "ho").as_bytes()
            ),
            Err(ChannelError::BadSignature)
        );
    }

    fn reply(channel: Channel) -> OutboundMessage {
        OutboundMessage {
            channel,
            to: "6945882155431234".into(),
            business_account: "109876543210987".into(),
            text: "We're open until 18:00 today.".into(),
            idempotency_key: "reply-7".into(),
            subject: None,
            in_reply_to: None,
            template: None,
            tag: None,
            outbox_id: None,
        }
    }

    #[test]
    fn send_request_has_the_documented_url_and_body() {
        let (url, body) = send_request(
            "https://graph.facebook.com",
            "v21.0",
            &reply(Channel::Messenger),
        );
        assert_eq!(url, "https://graph.facebook.com/v21.0/me/messages");
        assert_eq!(
            body,
            json!({
                "recipient": {"id": "6945882155431234"},
                "messaging_type": "RESPONSE",
                "message": {"text": "We're open until 18:00 today."}
            })
        );
    }

    #[tokio::test]
    async fn send_posts_with_the_page_token_and_returns_the_message_id() {
        let provider = fake_provider(
            200,
            r#"{"recipient_id":"6945882155431234","message_id":"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjS"}"#,
        )
        .await;
        let client = test_client(Duration::from_secs(5));
        let id = send(
            &client,
            &provider.base_url,
            "v21.0",
            "EAAG-page-token",
            &reply(Channel::Instagram),
        )
        .await
        .unwrap();
        assert_eq!(id, "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjS");
        let request = provider.only_request();
        assert_eq!(request.path, "/v21.0/me/messages");
        assert_eq!(
            request.header("authorization"),
            Some("Bearer EAAG-page-token")
        );
        assert_eq!(
            request.json(),
            send_request("", "v21.0", &reply(Channel::Instagram)).1
        );
    }

    #[tokio::test]
    async fn server_errors_are_retryable_and_client_errors_are_not() {
        let client = test_client(Duration::from_secs(5));
        let provider = fake_provider(503, "Service Unavailable").await;
        let error = send(
            &client,
            &provider.base_url,
            "v21.0",
            "t",
            &reply(Channel::Messenger),
        )
        .await
        .unwrap_err();
        assert!(error.retryable, "{error}");

        let provider = fake_provider(
            400,
            r#"{"error":{"message":"(#100) No matching user found","type":"OAuthException","code":100,"error_subcode":2018001,"fbtrace_id":"B1"}}"#,
        )
        .await;
        let error = send(
            &client,
            &provider.base_url,
            "v21.0",
            "t",
            &reply(Channel::Messenger),
        )
        .await
        .unwrap_err();
        assert!(!error.retryable, "{error}");
        assert!(error.message.starts_with("messenger: HTTP 400"), "{error}");
    }

    #[test]
    fn a_tagged_reply_is_a_human_agent_message_tag() {
        let tagged = OutboundMessage {
            tag: Some("HUMAN_AGENT".into()),
            ..reply(Channel::Messenger)
        };
        let (_, body) = send_request("https://graph.facebook.com", "v21.0", &tagged);
        assert_eq!(
            body,
            json!({
                "recipient": {"id": "6945882155431234"},
                "messaging_type": "MESSAGE_TAG",
                "tag": "HUMAN_AGENT",
                "message": {"text": "We're open until 18:00 today."}
            })
        );
    }

    #[tokio::test]
    async fn outside_the_window_is_plain_words_and_not_retried() {
        const REFUSED: &str = r#"{"error":{"message":"(#10) This message is sent outside of allowed window. Learn more about the new policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"C1"}}"#;
        let client = test_client(Duration::from_secs(5));

        let provider = fake_provider(400, REFUSED).await;
        let error = send(
            &client,
            &provider.base_url,
            "v21.0",
            "t",
            &reply(Channel::Messenger),
        )
        .await
        .unwrap_err();
        assert!(!error.retryable, "{error}");
        assert_eq!(
            error.message,
            "Messenger refused it: more than 24 hours since the customer's last message \
             (10/2018278). Within 7 days of it, reply as a person (HUMAN_AGENT tag)."
        );

        let provider = fake_provider(400, REFUSED).await;
        let tagged = OutboundMessage {
            tag: Some("HUMAN_AGENT".into()),
            ..reply(Channel::Instagram)
        };
        let error = send(&client, &provider.base_url, "v21.0", "t", &tagged)
            .await
            .unwrap_err();
        assert!(!error.retryable, "{error}");
        assert!(
            error.message.starts_with(
                "Instagram refused it: more than 7 days since the customer's last message"
            ),
            "{error}"
        );
    }

    /// The request was written, so the provider may have taken it: resending
    /// blindly could reach the customer twice.
    #[tokio::test]
    async fn a_provider_slower_than_the_client_timeout_leaves_the_outcome_unknown() {
        let provider =
            slow_fake_provider(200, r#"{"message_id":"m_late"}"#, Duration::from_secs(2)).await;
        let client = test_client(Duration::from_millis(200));
        let error = send(
            &client,
            &provider.base_url,
            "v21.0",
            "t",
            &reply(Channel::Messenger),
        )
        .await
        .unwrap_err();
        assert!(error.ambiguous && !error.retryable, "{error:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_sent_nothing_and_is_retryable() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = test_client(Duration::from_millis(500));
        let error = send(
            &client,
            &format!("http://127.0.0.1:{closed}"),
            "v21.0",
            "t",
            &reply(Channel::Messenger),
        )
        .await
        .unwrap_err();
        assert!(error.retryable && !error.ambiguous, "{error:?}");
    }
}
