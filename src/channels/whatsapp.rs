//! WhatsApp Cloud API: webhook parsing and sending text replies.
//!
//! Webhooks arrive as `{"object":"whatsapp_business_account","entry":[{"changes":
//! [{"field":"messages","value":{…}}]}]}`; one body may carry several customer
//! messages and delivery statuses, for several business numbers. Customers are
//! identified by their `wa_id` (the phone number in digits, no `+`), which is
//! also what a reply's `to` takes. Timestamps are Unix seconds as strings.
//!
//! WhatsApp has no echo of messages the business writes in the WhatsApp
//! Business app, so `is_echo` is always false here.
//!
//! Sends are free-form text, or an approved template when
//! [`OutboundMessage::template`] is set (the only thing WhatsApp accepts more
//! than 24 hours after the customer's last message). A text refused for that
//! reason (error 131047, either in the send's answer or later as a `failed`
//! status) is reported as [`WINDOW_CLOSED`]: plain words, not retried.

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
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    #[serde(default)]
    value: Value,
}

/// The `value` of a `messages` change.
#[derive(Deserialize)]
struct MessagesValue {
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    wa_id: String,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    from: String,
    id: String,
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    text: Option<TextBody>,
    image: Option<Media>,
    video: Option<Media>,
    document: Option<Media>,
    interactive: Option<Interactive>,
    button: Option<Button>,
    reaction: Option<Reaction>,
    location: Option<Location>,
}

#[derive(Deserialize)]
struct TextBody {
    body: String,
}

#[derive(Deserialize)]
struct Media {
    /// The media id: its URL comes from `GET /{version}/{id}` (see `media`).
    id: Option<String>,
    mime_type: Option<String>,
    caption: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    button_reply: Option<Reply>,
    list_reply: Option<Reply>,
}

#[derive(Deserialize)]
struct Reply {
    title: String,
}

#[derive(Deserialize)]
struct Button {
    text: String,
}

#[derive(Deserialize)]
struct Reaction {
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    name: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<i64>,
    title: Option<String>,
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// Parses a webhook body into customer messages and statuses of sent messages.
/// Changes other than `messages` (account updates, template reviews) and
/// unknown statuses are skipped.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Inbound>, ChannelError> {
    let webhook: Webhook = serde_json::from_slice(body).map_err(malformed_json)?;
    if webhook.object != "whatsapp_business_account" {
        return Err(ChannelError::Malformed(format!(
            "expected object `whatsapp_business_account`, got `{}`",
            webhook.object
        )));
    }
    let mut found = Vec::new();
    for (entry_index, entry) in webhook.entry.into_iter().enumerate() {
        for (change_index, change) in entry.changes.into_iter().enumerate() {
            if change.field != "messages" {
                tracing::debug!(field = %change.field, "skipping WhatsApp change");
                continue;
            }
            let value: MessagesValue = serde_json::from_value(change.value).map_err(|err| {
                ChannelError::Malformed(format!(
                    "entry[{entry_index}].changes[{change_index}].value: {err}"
                ))
            })?;
            parse_messages_value(value, &mut found)?;
        }
    }
    Ok(found)
}

fn parse_messages_value(
    value: MessagesValue,
    found: &mut Vec<Inbound>,
) -> Result<(), ChannelError> {
    for message in value.messages {
        let sender_name = value
            .contacts
            .iter()
            .find(|contact| contact.wa_id == message.from)
            .and_then(|contact| contact.profile.as_ref()?.name.clone())
            .filter(|name| !name.trim().is_empty());
        let timestamp_ms = seconds_to_ms(&message.timestamp)?;
        let attachments = message_attachments(&message);
        found.push(Inbound::Message(InboundMessage {
            channel: Channel::Whatsapp,
            text: message_text(&message),
            provider_message_id: message.id,
            sender: message.from,
            business_account: value.metadata.phone_number_id.clone(),
            sender_name,
            timestamp_ms,
            is_echo: false,
            thread_ref: None,
            subject: None,
            attachments,
        }));
    }
    for status in value.statuses {
        let state = match status.status.as_str() {
            "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "read" => DeliveryState::Read,
            "failed" => DeliveryState::Failed,
            other => {
                tracing::debug!(status = other, "skipping WhatsApp status");
                continue;
            }
        };
        let error = status.errors.first().map(describe_status_error);
        found.push(Inbound::Status(StatusUpdate {
            channel: Channel::Whatsapp,
            provider_message_id: status.id,
            state,
            error,
        }));
    }
    Ok(())
}

fn seconds_to_ms(timestamp: &str) -> Result<i64, ChannelError> {
    timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|seconds| seconds.checked_mul(1000))
        .ok_or_else(|| {
            ChannelError::Malformed(format!("timestamp `{timestamp}` is not Unix seconds"))
        })
}

/// An `image` message's picture, to be fetched by its media id.
fn message_attachments(message: &Message) -> Vec<InboundAttachment> {
    let image = message.image.as_ref().filter(|_| message.kind == "image");
    match image.and_then(|media| Some((media.id.clone()?, media))) {
        Some((media_id, media)) => vec![InboundAttachment {
            marker: "[image]".into(),
            content_type: media.mime_type.clone(),
            source: AttachmentSource::WhatsappMedia { media_id },
        }],
        None => Vec::new(),
    }
}

/// The text of a message, or a bracketed marker for what is not text.
fn message_text(message: &Message) -> String {
    let with_caption = |marker: &str, media: &Option<Media>| match media
        .as_ref()
        .and_then(|media| media.caption.as_deref())
    {
        Some(caption) if !caption.trim().is_empty() => format!("[{marker}] {caption}"),
        _ => format!("[{marker}]"),
    };
    match message.kind.as_str() {
        "text" => match &message.text {
            Some(text) => text.body.clone(),
            None => "[text]".to_string(),
        },
        "image" => with_caption("image", &message.image),
        "video" => with_caption("video", &message.video),
        "document" => with_caption("document", &message.document),
        // A tap on a reply button or list row: the label is what the customer "said".
        "interactive" => message
            .interactive
            .as_ref()
            .and_then(|reply| reply.button_reply.as_ref().or(reply.list_reply.as_ref()))
            .map(|reply| reply.title.clone())
            .unwrap_or_else(|| "[interactive]".to_string()),
        // A tap on a template's quick-reply button.
        "button" => message
            .button
            .as_ref()
            .map(|button| button.text.clone())
            .unwrap_or_else(|| "[button]".to_string()),
        "reaction" => match message.reaction.as_ref().and_then(|r| r.emoji.as_deref()) {
            Some(emoji) if !emoji.is_empty() => format!("[reaction {emoji}]"),
            // An empty emoji means the customer removed their reaction.
            _ => "[reaction removed]".to_string(),
        },
        "location" => {
            let place = message.location.as_ref().and_then(|location| {
                let parts: Vec<&str> = [location.name.as_deref(), location.address.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter(|part| !part.trim().is_empty())
                    .collect();
                (!parts.is_empty()).then(|| parts.join(", "))
            });
            match place {
                Some(place) => format!("[location] {place}"),
                None => "[location]".to_string(),
            }
        }
        "contacts" => "[contact]".to_string(),
        other => format!("[{other}]"),
    }
}

/// WhatsApp's error code for free-form text sent more than 24 hours after the
/// customer's last message ("Re-engagement message").
pub const REENGAGEMENT_CODE: i64 = 131047;

/// What the owner reads when WhatsApp refuses a reply because its 24-hour
/// customer-service window has closed.
pub const WINDOW_CLOSED: &str = "WhatsApp refused it: more than 24 hours since the customer's last message (131047). Send an approved template instead.";

/// [`WINDOW_CLOSED`] for 131047, else `131026: Message undeliverable` (with
/// WhatsApp's details in parentheses when it gives any).
fn describe_status_error(error: &ApiError) -> String {
    if error.code == Some(REENGAGEMENT_CODE) {
        return WINDOW_CLOSED.to_string();
    }
    let code = error
        .code
        .map(|code| format!("{code}: "))
        .unwrap_or_default();
    let title = error.title.as_deref().unwrap_or("failed");
    match error
        .error_data
        .as_ref()
        .and_then(|data| data.details.as_deref())
    {
        Some(details) if !details.is_empty() => format!("{code}{title} ({details})"),
        _ => format!("{code}{title}"),
    }
}

/// The URL and JSON body of a reply: free-form text, or the template in
/// `msg.template` with its parameters as the body's text values (the access
/// token goes in the `Authorization` header, see [`send`]).
pub fn send_request(base_url: &str, api_version: &str, msg: &OutboundMessage) -> (String, Value) {
    let url = format!(
        "{}/{}/{}/messages",
        base_url.trim_end_matches('/'),
        api_version,
        msg.business_account
    );
    let body = match &msg.template {
        Some(template) => {
            let mut fields = json!({
                "name": template.name,
                "language": { "code": template.language },
            });
            if !template.parameters.is_empty() {
                let parameters: Vec<Value> = template
                    .parameters
                    .iter()
                    .map(|text| json!({ "type": "text", "text": text }))
                    .collect();
                fields["components"] = json!([{ "type": "body", "parameters": parameters }]);
            }
            json!({
                "messaging_product": "whatsapp",
                "to": msg.to,
                "type": "template",
                "template": fields,
            })
        }
        None => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": msg.to,
            "type": "text",
            "text": { "preview_url": false, "body": msg.text },
        }),
    };
    (url, body)
}

/// Sends a reply (text or template) from `msg.business_account` (a
/// phone_number_id) to `msg.to` (a wa_id) and returns the new message's wamid,
/// which later status webhooks refer to. Outside the 24-hour customer-service
/// window WhatsApp refuses free-form text (error 131047, usually arriving later
/// as a `failed` status, sometimes in the answer itself: then [`WINDOW_CLOSED`]).
pub async fn send(
    client: &reqwest::Client,
    base_url: &str,
    api_version: &str,
    access_token: &str,
    msg: &OutboundMessage,
) -> Result<String, SendError> {
    let (url, body) = send_request(base_url, api_version, msg);
    let answer = super::graph::post("whatsapp", client, &url, access_token, &body, |code, _| {
        (code == REENGAGEMENT_CODE).then(|| SendError::permanent(WINDOW_CLOSED))
    })
    .await?;
    answer["messages"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| SendError::accepted_without_id("whatsapp", &answer.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{closed_base_url, fake_provider, test_client};
    use std::time::Duration;

    fn change(value: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{value}}}]}}]}}"#
        )
    }

    fn message(kind_and_body: &str) -> String {
        change(&format!(
            r#"{{"messaging_product":"whatsapp",
                "metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},
                "contacts":[{{"profile":{{"name":"Sheena Nelson"}},"wa_id":"16505551234"}}],
                "messages":[{{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383",{kind_and_body}}}]}}"#
        ))
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
    fn text_message_becomes_an_inbound_message() {
        let parsed = only_message(&message(
            r#""type":"text","text":{"body":"Do you deliver on Sundays?"}"#,
        ));
        assert_eq!(
            parsed,
            InboundMessage {
                channel: Channel::Whatsapp,
                provider_message_id:
                    "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=".into(),
                sender: "16505551234".into(),
                business_account: "106540352242922".into(),
                sender_name: Some("Sheena Nelson".into()),
                text: "Do you deliver on Sundays?".into(),
                timestamp_ms: 1_749_416_383_000,
                is_echo: false,
                thread_ref: None,
                subject: None,
                attachments: Vec::new(),
            }
        );
    }

    #[test]
    fn non_text_messages_become_bracketed_markers() {
        let cases = [
            (
                r#""type":"image","image":{"caption":"this one?","mime_type":"image/jpeg","sha256":"abc","id":"1003383421387256"}"#,
                "[image] this one?",
            ),
            (
                r#""type":"image","image":{"mime_type":"image/jpeg","sha256":"abc","id":"1003383421387256"}"#,
                "[image]",
            ),
            (
                r#""type":"sticker","sticker":{"mime_type":"image/webp","sha256":"abc","id":"1228296638527779","animated":false}"#,
                "[sticker]",
            ),
            (
                r#""type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"abc","id":"1003383421387256","voice":true}"#,
                "[audio]",
            ),
            (
                r#""type":"reaction","reaction":{"message_id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QUE","emoji":"👍"}"#,
                "[reaction 👍]",
            ),
            (
                r#""type":"location","location":{"address":"1 Hacker Way, Menlo Park, CA 94025","latitude":37.483307,"longitude":-122.148981,"name":"Main Office"}"#,
                "[location] Main Office, 1 Hacker Way, Menlo Park, CA 94025",
            ),
            (
                r#""type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"opening-hours","title":"Opening hours"}}"#,
                "Opening hours",
            ),
            (
                r#""type":"button","button":{"payload":"TALK_TO_A_PERSON","text":"Talk to a person"}"#,
                "Talk to a person",
            ),
            (
                r#""type":"unsupported","errors":[{"code":131051,"title":"Message type unknown"}]"#,
                "[unsupported]",
            ),
        ];
        for (fields, expected) in cases {
            assert_eq!(only_message(&message(fields)).text, expected, "{fields}");
        }
    }

    #[test]
    fn statuses_map_to_delivery_states() {
        let body = change(
            r#"{"messaging_product":"whatsapp",
                "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
                "statuses":[
                  {"id":"wamid.A","status":"sent","timestamp":"1750263773","recipient_id":"16505551234","conversation":{"id":"c1","origin":{"type":"service"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"service"}},
                  {"id":"wamid.A","status":"delivered","timestamp":"1750263774","recipient_id":"16505551234"},
                  {"id":"wamid.A","status":"read","timestamp":"1750263780","recipient_id":"16505551234"},
                  {"id":"wamid.B","status":"failed","timestamp":"1750263790","recipient_id":"16505551234",
                   "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message","error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]},
                  {"id":"wamid.C","status":"deleted","timestamp":"1750263799","recipient_id":"16505551234"}
                ]}"#,
        );
        let parsed = parse_webhook(body.as_bytes()).unwrap();
        let states: Vec<_> = parsed
            .iter()
            .map(|inbound| match inbound {
                Inbound::Status(status) => (status.provider_message_id.as_str(), status.state),
                other => panic!("expected a status, got {other:?}"),
            })
            .collect();
        assert_eq!(
            states,
            [
                ("wamid.A", DeliveryState::Sent),
                ("wamid.A", DeliveryState::Delivered),
                ("wamid.A", DeliveryState::Read),
                ("wamid.B", DeliveryState::Failed),
            ]
        );
        let Inbound::Status(failed) = &parsed[3] else {
            unreachable!()
        };
        assert_eq!(failed.error.as_deref(), Some(WINDOW_CLOSED));
    }

    #[test]
    fn failed_statuses_say_why_in_plain_words() {
        let failed = |errors: &str| {
            let body = change(&format!(
                r#"{{"messaging_product":"whatsapp",
                    "metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},
                    "statuses":[{{"id":"wamid.F","status":"failed","timestamp":"1750263790","recipient_id":"16505551234","errors":{errors}}}]}}"#
            ));
            match parse_webhook(body.as_bytes()).unwrap().as_slice() {
                [Inbound::Status(status)] => {
                    assert_eq!(status.state, DeliveryState::Failed);
                    status.error.clone()
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            failed(r#"[{"code":131047,"title":"Re-engagement message"}]"#).as_deref(),
            Some(
                "WhatsApp refused it: more than 24 hours since the customer's last message \
                 (131047). Send an approved template instead."
            )
        );
        assert_eq!(
            failed(r#"[{"code":131026,"title":"Message undeliverable"}]"#).as_deref(),
            Some("131026: Message undeliverable")
        );
        assert_eq!(
            failed(r#"[{"code":131026,"title":"Message undeliverable","error_data":{"details":"Receiver is incapable of receiving this message"}}]"#).as_deref(),
            Some("131026: Message undeliverable (Receiver is incapable of receiving this message)")
        );
        assert_eq!(failed("[]"), None);
    }

    #[test]
    fn one_body_can_carry_messages_for_several_numbers() {
        let body = r#"{"object":"whatsapp_business_account","entry":[
            {"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"111"},
              "contacts":[{"profile":{"name":"A"},"wa_id":"491701"}],
              "messages":[{"from":"491701","id":"wamid.1","timestamp":"1700000000","type":"text","text":{"body":"hi"}}]}}]},
            {"id":"2","changes":[{"field":"account_update","value":{"event":"VERIFIED_ACCOUNT"}},
              {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"2","phone_number_id":"222"},
              "messages":[{"from":"491702","id":"wamid.2","timestamp":"1700000001","type":"text","text":{"body":"hello"}}]}}]}]}"#;
        let parsed = parse_webhook(body.as_bytes()).unwrap();
        let summary: Vec<_> = parsed
            .into_iter()
            .map(|inbound| match inbound {
                Inbound::Message(m) => (m.business_account, m.sender, m.sender_name, m.text),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("111".into(), "491701".into(), Some("A".into()), "hi".into()),
                ("222".into(), "491702".into(), None, "hello".into()),
            ]
        );
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        let not_json = parse_webhook(b"{\"object\":").unwrap_err();
        assert!(
            matches!(&not_json, ChannelError::Malformed(reason) if reason.contains("invalid webhook JSON")),
            "{not_json}"
        );

        let wrong_object = parse_webhook(br#"{"object":"page","entry":[]}"#).unwrap_err();
        assert!(
            matches!(&wrong_object, ChannelError::Malformed(reason) if reason.contains("`page`")),
            "{wrong_object}"
        );

        let missing_from = message(r#""type":"text","text":{"body":"hi"}"#)
            .replace(r#""from":"16505551234","#, "");
        let error = parse_webhook(missing_from.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, ChannelError::Malformed(reason) if reason.contains("entry[0].changes[0].value") && reason.contains("`from`")),
            "{error}"
        );

        let bad_timestamp =
            message(r#""type":"text","text":{"body":"hi"}"#).replace("1749416383", "yesterday");
        let error = parse_webhook(bad_timestamp.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, ChannelError::Malformed(reason) if reason.contains("yesterday")),
            "{error}"
        );
    }

    fn reply() -> OutboundMessage {
        OutboundMessage {
            channel: Channel::Whatsapp,
            to: "16505551234".into(),
            business_account: "106540352242922".into(),
            text: "Yes, we deliver on Sundays from 10:00.".into(),
            idempotency_key: "reply-42".into(),
            subject: None,
            in_reply_to: None,
            template: None,
            tag: None,
        }
    }

    #[test]
    fn send_request_has_the_documented_url_and_body() {
        let (url, body) = send_request("https://graph.facebook.com/", "v21.0", &reply());
        assert_eq!(
            url,
            "https://graph.facebook.com/v21.0/106540352242922/messages"
        );
        assert_eq!(
            body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "text",
                "text": {"preview_url": false, "body": "Yes, we deliver on Sundays from 10:00."}
            })
        );
    }

    fn template_reply(parameters: &[&str]) -> OutboundMessage {
        OutboundMessage {
            text: "Hi Kerry, your order is ready for pick-up.".into(),
            template: Some(crate::channels::TemplateSend {
                name: "order_ready".into(),
                language: "en_US".into(),
                parameters: parameters.iter().map(|p| p.to_string()).collect(),
            }),
            ..reply()
        }
    }

    #[test]
    fn template_send_has_the_cloud_api_template_body() {
        let (url, body) = send_request(
            "https://graph.facebook.com",
            "v21.0",
            &template_reply(&["Kerry", "#1042"]),
        );
        assert_eq!(
            url,
            "https://graph.facebook.com/v21.0/106540352242922/messages"
        );
        assert_eq!(
            body,
            json!({
                "messaging_product": "whatsapp",
                "to": "16505551234",
                "type": "template",
                "template": {
                    "name": "order_ready",
                    "language": {"code": "en_US"},
                    "components": [{"type": "body", "parameters": [
                        {"type": "text", "text": "Kerry"},
                        {"type": "text", "text": "#1042"}
                    ]}]
                }
            })
        );
    }

    #[test]
    fn template_without_parameters_has_no_components() {
        let (_, body) = send_request("", "v21.0", &template_reply(&[]));
        assert_eq!(
            body["template"],
            json!({"name": "order_ready", "language": {"code": "en_US"}})
        );
    }

    #[test]
    fn stored_template_json_round_trips() {
        let stored = r#"{"name":"order_ready","language":"en_US","parameters":["Kerry"]}"#;
        let template: crate::channels::TemplateSend = serde_json::from_str(stored).unwrap();
        assert_eq!(template, template_reply(&["Kerry"]).template.unwrap());
        assert_eq!(serde_json::to_string(&template).unwrap(), stored);
    }

    #[tokio::test]
    async fn reengagement_refusal_is_plain_words_and_not_retried() {
        let provider = fake_provider(
            400,
            r#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"A3"}}"#,
        )
        .await;
        let client = test_client(Duration::from_secs(5));
        let error = send(&client, &provider.base_url, "v21.0", "t", &reply())
            .await
            .unwrap_err();
        assert!(!error.retryable, "{error}");
        assert_eq!(error.message, WINDOW_CLOSED);
    }

    #[tokio::test]
    async fn send_posts_with_the_bearer_token_and_returns_the_wamid() {
        let provider = fake_provider(
            200,
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}"#,
        )
        .await;
        let client = test_client(Duration::from_secs(5));
        let id = send(
            &client,
            &provider.base_url,
            "v21.0",
            "EAAJB-token",
            &reply(),
        )
        .await
        .unwrap();
        assert_eq!(
            id,
            "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
        );

        let request = provider.only_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v21.0/106540352242922/messages");
        assert_eq!(request.header("authorization"), Some("Bearer EAAJB-token"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.json(), send_request("", "v21.0", &reply()).1);
    }

    #[tokio::test]
    async fn server_errors_are_retryable() {
        let provider = fake_provider(
            500,
            r#"{"error":{"message":"An unknown error has occurred.","type":"OAuthException","code":1,"is_transient":true,"fbtrace_id":"A1"}}"#,
        )
        .await;
        let client = test_client(Duration::from_secs(5));
        let error = send(&client, &provider.base_url, "v21.0", "t", &reply())
            .await
            .unwrap_err();
        assert!(error.retryable, "{error}");
    }

    #[tokio::test]
    async fn client_errors_are_not_retryable() {
        let provider = fake_provider(
            400,
            r#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"error_data":{"messaging_product":"whatsapp","details":"Invalid recipient"},"fbtrace_id":"A2"}}"#,
        )
        .await;
        let client = test_client(Duration::from_secs(5));
        let error = send(&client, &provider.base_url, "v21.0", "t", &reply())
            .await
            .unwrap_err();
        assert!(!error.retryable, "{error}");
        assert!(
            error.message.contains("(#100) Invalid parameter"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn unreachable_provider_is_retryable() {
        let client = test_client(Duration::from_secs(5));
        let error = send(&client, &closed_base_url().await, "v21.0", "t", &reply())
            .await
            .unwrap_err();
        assert!(error.retryable, "{error}");
    }

    #[tokio::test]
    async fn accepted_answer_without_an_id_is_not_retried() {
        let provider = fake_provider(200, r#"{"messaging_product":"whatsapp"}"#).await;
        let client = test_client(Duration::from_secs(5));
        let error = send(&client, &provider.base_url, "v21.0", "t", &reply())
            .await
            .unwrap_err();
        assert!(!error.retryable, "{error}");
    }
}
