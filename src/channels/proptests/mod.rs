//! Property tests over the Graph webhooks (WhatsApp, Messenger, Instagram):
//! arbitrary bytes and real payloads with hostile contents must parse or be
//! refused, never panic, and never come out much bigger than they went in.
//! Twilio and Mailgun are in `forms`, the signature floods in `flood`.

mod flood;
mod forms;

use super::{graph, meta, whatsapp, ChannelError, Inbound};
use crate::proptest_support::{config, deep_nesting, hostile_text, json_text};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The bytes of text a parse produced: what a hostile body can make us hold.
pub(super) fn inbound_bytes(items: &[Inbound]) -> usize {
    items
        .iter()
        .map(|item| match item {
            Inbound::Message(m) => {
                let attachments: usize = m
                    .attachments
                    .iter()
                    .map(|a| {
                        let inline = match &a.source {
                            super::AttachmentSource::Inline { bytes } => bytes.len(),
                            _ => 0,
                        };
                        a.marker.len()
                            + a.content_type.as_ref().map_or(0, String::len)
                            + a.source.stored().1.len()
                            + inline
                    })
                    .sum();
                m.provider_message_id.len()
                    + m.sender.len()
                    + m.business_account.len()
                    + m.sender_name.as_ref().map_or(0, String::len)
                    + m.text.len()
                    + m.thread_ref.as_ref().map_or(0, String::len)
                    + m.subject.as_ref().map_or(0, String::len)
                    + attachments
            }
            Inbound::Status(s) => {
                s.provider_message_id.len() + s.error.as_ref().map_or(0, String::len)
            }
        })
        .sum()
}

/// Linear in the input: every item needs some bytes of it, and each item's
/// own text is its input plus a marker, a copied account id or a fixed
/// sentence (a window-closed status) of bounded length.
pub(super) fn assert_bounded(body: &[u8], items: &[Inbound]) {
    assert!(
        items.len() <= body.len(),
        "{} items from {} bytes",
        items.len(),
        body.len()
    );
    let produced = inbound_bytes(items);
    assert!(
        produced <= 32 * body.len() + 4096,
        "{produced} bytes of output from {} bytes of input",
        body.len()
    );
}

pub(super) fn whatsapp_template() -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [
            {"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
                "messages": [
                    {"from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRB", "timestamp": "1749416383",
                     "type": "text", "text": {"body": "Do you deliver on Sundays?"}},
                    {"from": "16505551234", "id": "wamid.2", "timestamp": "1749416384", "type": "image",
                     "image": {"caption": "this one?", "mime_type": "image/jpeg", "sha256": "abc", "id": "1003383421387256"}},
                    {"from": "16505551234", "id": "wamid.3", "timestamp": "1749416385", "type": "interactive",
                     "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Yes"}}},
                    {"from": "16505551234", "id": "wamid.4", "timestamp": "1749416386", "type": "location",
                     "location": {"name": "Main Office", "address": "1 Hacker Way", "latitude": 37.4, "longitude": -122.1}},
                    {"from": "16505551234", "id": "wamid.5", "timestamp": "1749416387", "type": "reaction",
                     "reaction": {"message_id": "wamid.1", "emoji": "👍"}},
                    {"from": "16505551234", "id": "wamid.6", "timestamp": "1749416388", "type": "button",
                     "button": {"text": "Stop", "payload": "stop"}}
                ],
                "statuses": [
                    {"id": "wamid.out1", "status": "delivered", "timestamp": "1749416390", "recipient_id": "16505551234"},
                    {"id": "wamid.out2", "status": "failed", "timestamp": "1749416391", "recipient_id": "16505551234",
                     "errors": [{"code": 131047, "title": "Re-engagement message", "error_data": {"details": "more than 24 hours"}}]}
                ]
            }},
            {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}
        ]}]
    })
}

pub(super) fn messenger_template(object: &str) -> Value {
    json!({
        "object": object,
        "entry": [{"id": "109876543210987", "time": 1749416383200_i64, "messaging": [
            {"sender": {"id": "6543210987654321"}, "recipient": {"id": "109876543210987"}, "timestamp": 1749416383100_i64,
             "message": {"mid": "m_1", "text": "Do you have gluten-free bread?",
                "attachments": [
                    {"type": "image", "payload": {"url": "https://cdn.example/photo.jpg"}},
                    {"type": "image", "payload": {"url": "https://cdn.example/sticker.png", "sticker_id": 369239263222822_i64}}
                ]}},
            {"sender": {"id": "109876543210987"}, "recipient": {"id": "6543210987654321"}, "timestamp": 1749416383300_i64,
             "message": {"mid": "m_2", "text": "Yes, every day.", "is_echo": true, "app_id": 263902037430900_i64}},
            {"sender": {"id": "6543210987654321"}, "recipient": {"id": "109876543210987"}, "timestamp": 1749416383400_i64,
             "postback": {"mid": "m_3", "title": "Opening hours", "payload": "HOURS"}},
            {"sender": {"id": "6543210987654321"}, "recipient": {"id": "109876543210987"}, "timestamp": 1749416383500_i64,
             "reaction": {"mid": "m_2", "action": "react", "emoji": "❤️", "reaction": "love"}},
            {"sender": {"id": "6543210987654321"}, "recipient": {"id": "109876543210987"},
             "delivery": {"mids": ["m_out_1", "m_out_2"], "watermark": 1749416383000_i64}},
            {"sender": {"id": "6543210987654321"}, "recipient": {"id": "109876543210987"},
             "read": {"mid": "m_out_1", "watermark": 1749416383000_i64}},
            {"sender": {"id": "6543210987654321"}, "recipient": {"id": "109876543210987"},
             "message": {"mid": "m_4", "is_deleted": true}}
        ]}]
    })
}

fn any_graph_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => hostile_text().prop_map(String::into_bytes),
        4 => json_text(&whatsapp_template()),
        2 => json_text(&messenger_template("page")),
        2 => json_text(&messenger_template("instagram")),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn proptest_whatsapp_parse_never_panics_and_stays_bounded(body in any_graph_body()) {
        if let Ok(items) = whatsapp::parse_webhook(&body) {
            assert_bounded(&body, &items);
        }
    }

    #[test]
    fn proptest_meta_parse_never_panics_and_stays_bounded(body in any_graph_body()) {
        if let Ok(items) = meta::parse_webhook(&body) {
            assert_bounded(&body, &items);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Any header refuses any body under a key it was not made with; the
    /// real signature is accepted in either hex case, with blanks around it.
    #[test]
    fn proptest_graph_signature_accepts_only_the_real_digest(
        secret in proptest::collection::vec(any::<u8>(), 0..80),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        header in hostile_text(),
        flip in any::<prop::sample::Index>(),
    ) {
        prop_assert_eq!(
            graph::verify_signature(&secret, Some(&header), &body),
            Err(ChannelError::BadSignature)
        );
        let good = flood::graph_digest(&secret, &body);
        prop_assert_eq!(graph::verify_signature(&secret, Some(&format!("sha256={good}")), &body), Ok(()));
        let upper = format!(" sha256={} ", good.to_uppercase());
        prop_assert_eq!(graph::verify_signature(&secret, Some(&upper), &body), Ok(()));
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 0x01;
            prop_assert_eq!(
                graph::verify_signature(&secret, Some(&format!("sha256={good}")), &tampered),
                Err(ChannelError::BadSignature)
            );
        }
    }

    #[test]
    fn proptest_graph_handshake_echoes_only_for_our_token(
        mode in hostile_text(), token in hostile_text(), challenge in hostile_text(),
    ) {
        let expected = "test-verify-token";
        let answer = graph::verify_handshake(Some(&mode), Some(&token), Some(&challenge), expected);
        prop_assert_eq!(answer.is_some(), mode == "subscribe" && token == expected);
        prop_assert_eq!(graph::verify_handshake(Some("subscribe"), Some(&token), Some(&challenge), ""), None);
    }

    #[test]
    fn proptest_media_sizes_read_in_plain_words(bytes in any::<u64>()) {
        let words = super::media::too_large(bytes);
        prop_assert!(words.contains("limit") && words.len() < 200, "{}", words);
    }
}

#[test]
fn deeply_nested_graph_bodies_are_refused_not_overflowed() {
    for depth in [129, 10_000, 1_000_000] {
        let body = deep_nesting(depth);
        assert!(matches!(
            whatsapp::parse_webhook(&body),
            Err(ChannelError::Malformed(_))
        ));
        assert!(matches!(
            meta::parse_webhook(&body),
            Err(ChannelError::Malformed(_))
        ));
    }
    let nested_value = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{}}}]}}]}}"#,
        String::from_utf8(deep_nesting(100_000)).unwrap()
    );
    assert!(whatsapp::parse_webhook(nested_value.as_bytes()).is_err());
}

/// The regression: one long `phone_number_id` was copied into each of
/// thousands of messages (a 1 MB id × 10,000 messages was 10 GB).
#[test]
fn a_long_business_id_is_not_multiplied_by_many_messages() {
    let message =
        json!({"from": "1", "id": "w", "timestamp": "1", "type": "text", "text": {"body": "hi"}});
    let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "9".repeat(1 << 20)},
        "messages": vec![message; 10_000],
    }}]}]})
    .to_string();
    match whatsapp::parse_webhook(body.as_bytes()) {
        Ok(items) => assert_bounded(body.as_bytes(), &items),
        Err(error) => assert!(matches!(error, ChannelError::Malformed(_)), "{error}"),
    }
}

/// The regression: a long profile name was copied into each of its sender's
/// messages (and every message searched every contact).
#[test]
fn a_long_profile_name_is_not_multiplied_by_many_messages() {
    let message =
        json!({"from": "1", "id": "w", "timestamp": "1", "type": "text", "text": {"body": "hi"}});
    let contacts: Vec<Value> = (0..5_000)
        .map(|n| json!({"wa_id": (n + 2).to_string(), "profile": {"name": "x"}}))
        .chain([json!({"wa_id": "1", "profile": {"name": "N".repeat(1 << 20)}})])
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "106540352242922"},
        "contacts": contacts,
        "messages": vec![message; 10_000],
    }}]}]})
    .to_string();
    let items = whatsapp::parse_webhook(body.as_bytes()).unwrap();
    assert_eq!(items.len(), 10_000);
    assert_bounded(body.as_bytes(), &items);
    let Inbound::Message(first) = &items[0] else {
        panic!("a message")
    };
    assert_eq!(
        first.sender_name.as_ref().map(|n| n.chars().count()),
        Some(256)
    );
}
