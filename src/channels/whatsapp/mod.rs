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
    /// What the send carried as `biz_opaque_callback_data` (our outbox row
    /// id), echoed back. Read as any JSON so that an odd value is ignored
    /// rather than failing the whole body.
    #[serde(default)]
    biz_opaque_callback_data: Option<Value>,
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

/// The longest business number id taken: it is copied into every message of
/// its change, so one huge id must not be multiplied by many messages.
const MAX_ACCOUNT_ID_BYTES: usize = 256;
/// Profile names are cut to this many characters, for the same reason (a
/// name is copied into each of its sender's messages; WhatsApp allows far
/// fewer).
const MAX_NAME_CHARS: usize = 256;

fn parse_messages_value(
    value: MessagesValue,
    found: &mut Vec<Inbound>,
) -> Result<(), ChannelError> {
    if value.metadata.phone_number_id.len() > MAX_ACCOUNT_ID_BYTES {
        return Err(ChannelError::Malformed(format!(
            "metadata.phone_number_id is longer than {MAX_ACCOUNT_ID_BYTES} bytes"
        )));
    }
    // By wa_id, the first contact listed winning: one pass, not one per message.
    let mut names: std::collections::HashMap<&str, Option<String>> = Default::default();
    for contact in &value.contacts {
        names.entry(contact.wa_id.as_str()).or_insert_with(|| {
            let name = contact.profile.as_ref()?.name.as_deref()?;
            (!name.trim().is_empty()).then(|| name.chars().take(MAX_NAME_CHARS).collect())
        });
    }
    for message in value.messages {
        let sender_name = names.get(message.from.as_str()).cloned().flatten();
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
            outbox_id: callback_data(status.biz_opaque_callback_data),
        }));
    }
    Ok(())
}

/// The longest `biz_opaque_callback_data` WhatsApp accepts (512 characters);
/// ours are outbox ids, far shorter.
const MAX_CALLBACK_DATA_BYTES: usize = 512;

/// A status's `biz_opaque_callback_data`: absent, empty, not a string or
/// longer than WhatsApp allows all read as `None` (today's behaviour: the
/// status is matched by its wamid alone).
fn callback_data(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() && text.len() <= MAX_CALLBACK_DATA_BYTES => {
            Some(text)
        }
        _ => None,
    }
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
/// token goes in the `Authorization` header, see [`send`]). A reply that is an
/// outbox row carries its id as `biz_opaque_callback_data`, which WhatsApp
/// echoes in every status of the message: a status can then name the send
/// even when its answer (the wamid) was lost.
pub fn send_request(base_url: &str, api_version: &str, msg: &OutboundMessage) -> (String, Value) {
    let url = format!(
        "{}/{}/{}/messages",
        base_url.trim_end_matches('/'),
        api_version,
        msg.business_account
    );
    let mut body = match &msg.template {
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
    if let Some(outbox_id) = &msg.outbox_id {
        body["biz_opaque_callback_data"] = json!(outbox_id);
    }
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
mod tests;
