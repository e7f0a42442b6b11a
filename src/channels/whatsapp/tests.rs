//! Parsing, signatures and sends for WhatsApp, against the Cloud API's wire formats.
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
            provider_message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
                .into(),
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
fn a_status_echoes_the_callback_data_of_its_send() {
    let body = change(
        r#"{"messaging_product":"whatsapp",
            "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
            "statuses":[
              {"id":"wamid.A","status":"delivered","timestamp":"1750263774","recipient_id":"16505551234","biz_opaque_callback_data":"019ae3c1f0a2b3c4d5e6f7a8b9c0d1e2"},
              {"id":"wamid.B","status":"sent","timestamp":"1750263775","recipient_id":"16505551234"},
              {"id":"wamid.C","status":"sent","timestamp":"1750263776","biz_opaque_callback_data":{"not":"a string"}},
              {"id":"wamid.D","status":"read","timestamp":"1750263777","recipient_id":"16505551234","biz_opaque_callback_data":""}
            ]}"#,
    );
    let parsed: Vec<Option<String>> = parse_webhook(body.as_bytes())
        .unwrap()
        .into_iter()
        .map(|inbound| match inbound {
            Inbound::Status(status) => status.outbox_id,
            other => panic!("expected a status, got {other:?}"),
        })
        .collect();
    assert_eq!(
        parsed,
        [
            Some("019ae3c1f0a2b3c4d5e6f7a8b9c0d1e2".to_string()),
            None,
            None,
            None
        ]
    );
}

#[test]
fn an_outbox_send_carries_its_id_as_callback_data() {
    let text = OutboundMessage {
        outbox_id: Some("019ae3c1f0a2b3c4d5e6f7a8b9c0d1e2".into()),
        ..reply()
    };
    let (_, body) = send_request("https://graph.facebook.com", "v21.0", &text);
    assert_eq!(
        body["biz_opaque_callback_data"],
        "019ae3c1f0a2b3c4d5e6f7a8b9c0d1e2"
    );
    assert_eq!(body["type"], "text");
    let template = OutboundMessage {
        outbox_id: Some("019ae3c1f0a2b3c4d5e6f7a8b9c0d1e3".into()),
        ..template_reply(&[])
    };
    let (_, body) = send_request("https://graph.facebook.com", "v21.0", &template);
    assert_eq!(
        body["biz_opaque_callback_data"],
        "019ae3c1f0a2b3c4d5e6f7a8b9c0d1e3"
    );
    assert_eq!(body["type"], "template");
    // Not an outbox row (none today): no field at all.
    let (_, body) = send_request("https://graph.facebook.com", "v21.0", &reply());
    assert!(body.get("biz_opaque_callback_data").is_none(), "{body}");
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

    let missing_from =
        message(r#""type":"text","text":{"body":"hi"}"#).replace(r#""from":"16505551234","#, "");
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
        outbox_id: None,
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
