//! Each channel's parse of the pictures it is sent, and the downloads with
//! each provider's auth against a real HTTP server.

use super::*;
use crate::channels::{email, meta, twilio, whatsapp, Inbound, InboundAttachment, InboundMessage};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

fn only_message(items: Vec<Inbound>) -> InboundMessage {
    match items.into_iter().next() {
        Some(Inbound::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn a_whatsapp_image_message_lists_its_media_id_and_type() {
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
        "messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},
        "messages":[{"from":"16505551234","id":"wamid.1","timestamp":"1749416383","type":"image",
        "image":{"caption":"like this","mime_type":"image/jpeg","sha256":"abc","id":"1479537139650973"}}]}}]}]}"#;
    let message = only_message(whatsapp::parse_webhook(body.as_bytes()).unwrap());
    assert_eq!(message.text, "[image] like this");
    assert_eq!(
        message.attachments,
        vec![InboundAttachment {
            marker: "[image]".into(),
            content_type: Some("image/jpeg".into()),
            source: AttachmentSource::WhatsappMedia {
                media_id: "1479537139650973".into()
            },
        }]
    );
}

#[test]
fn a_messenger_image_lists_its_url_but_a_sticker_does_not() {
    let body = r#"{"object":"page","entry":[{"id":"PAGE","time":1749416383000,"messaging":[{"sender":{"id":"PSID"},"recipient":{"id":"PAGE"},"timestamp":1749416383000,
        "message":{"mid":"m_1","attachments":[{"type":"image","payload":{"url":"https://scontent.example/photo.jpg"}},
        {"type":"image","payload":{"url":"https://scontent.example/like.png","sticker_id":369239263222822}}]}}]}]}"#;
    let message = only_message(meta::parse_webhook(body.as_bytes()).unwrap());
    assert_eq!(message.text, "[image] [sticker]");
    assert_eq!(
        message.attachments,
        vec![InboundAttachment {
            marker: "[image]".into(),
            content_type: None,
            source: AttachmentSource::MetaUrl {
                url: "https://scontent.example/photo.jpg".into()
            },
        }]
    );
}

#[test]
fn a_twilio_mms_lists_media_url_0_with_its_declared_type() {
    let form = "MessageSid=MM1&From=%2B15551230000&To=%2B15550001111&Body=this+one&NumMedia=2\
        &MediaContentType0=image%2Fpng&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMM1%2FMedia%2FME0\
        &MediaContentType1=video%2Fmp4&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2FME1";
    let (_, inbound) = twilio::parse_form(form.as_bytes(), 1).unwrap();
    let message = only_message(vec![inbound]);
    assert_eq!(message.text, "this one [image] [video]");
    assert_eq!(
        message.attachments,
        vec![InboundAttachment {
            marker: "[image]".into(),
            content_type: Some("image/png".into()),
            source: AttachmentSource::TwilioUrl {
                url: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0".into()
            },
        }]
    );
}

#[test]
fn mailgun_multipart_image_parts_become_inline_attachments_in_order() {
    let fields: Vec<(String, String)> = [
        ("from", "Ann Lee <ann@example.com>"),
        ("recipient", "hello@rosas.example"),
        ("timestamp", "1749416383"),
        ("stripped-text", "Here is the design"),
        ("attachment-count", "3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut message = email::parse_form(&fields).unwrap();
    let part = |field: &str, content_type: &str, bytes: &[u8]| email::FilePart {
        field: field.into(),
        content_type: Some(content_type.into()),
        bytes: bytes.to_vec(),
    };
    email::attach_parts(
        &mut message,
        vec![
            part("attachment-3", "image/jpeg", b"third"),
            part("attachment-2", "application/pdf", b"%PDF"),
            part("attachment-1", "image/png", b"first"),
            part("not-an-attachment", "image/png", b"x"),
        ],
    );
    assert_eq!(
        message.text,
        "Here is the design [attachment] [attachment] [attachment]"
    );
    let inline: Vec<&[u8]> = message
        .attachments
        .iter()
        .map(|a| match &a.source {
            AttachmentSource::Inline { bytes } => bytes.as_slice(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(inline, [b"first".as_slice(), b"third".as_slice()]);
    assert_eq!(
        message.attachments[0].content_type.as_deref(),
        Some("image/png")
    );
}

#[test]
fn stored_sources_round_trip() {
    for source in [
        AttachmentSource::WhatsappMedia {
            media_id: "123".into(),
        },
        AttachmentSource::MetaUrl {
            url: "https://a.example/x".into(),
        },
        AttachmentSource::TwilioUrl {
            url: "https://api.twilio.com/y".into(),
        },
    ] {
        let (kind, reference) = source.stored();
        assert_eq!(
            AttachmentSource::from_stored(kind, reference),
            Some(source.clone())
        );
    }
}

#[test]
fn sizes_read_in_plain_words() {
    assert_eq!(describe_size(10 * 1024 * 1024), "10 MB");
    assert_eq!(describe_size(1536 * 1024), "1.5 MB");
    assert_eq!(describe_size(900), "900 bytes");
}

const PICTURE: &[u8] = b"\x89PNG\r\n\x1a\n-not-really-a-png-but-its-first-bytes-are";

/// A media server: a Graph media lookup, its file, a Twilio media URL that
/// redirects to its file, and a large file without a Content-Length.
async fn media_server() -> String {
    async fn serve(State(base): State<String>, uri: Uri, headers: HeaderMap) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let bearer_ok = auth == "Bearer token-1";
        let basic_ok = auth == "Basic QUMxOnNlY3JldA=="; // AC1:secret
        match uri.path() {
            "/v21.0/MEDIA1" if bearer_ok => axum::Json(serde_json::json!({
                "url": format!("{base}/files/MEDIA1"), "mime_type": "image/png", "id": "MEDIA1"
            }))
            .into_response(),
            "/files/MEDIA1" if bearer_ok => PICTURE.into_response(),
            "/twilio/ME0" if basic_ok => {
                // Another host, as Twilio's CDN is: the credentials stay behind.
                let cdn = base.replace("127.0.0.1", "localhost");
                (StatusCode::FOUND, [("location", format!("{cdn}/cdn/ME0"))]).into_response()
            }
            "/cdn/ME0" if auth.is_empty() => PICTURE.into_response(),
            "/stream" => {
                let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![0u8; 1024]));
                Body::from_stream(futures_util::stream::iter(chunks)).into_response()
            }
            "/big" => vec![0u8; 4096].into_response(),
            _ => (StatusCode::UNAUTHORIZED, "wrong credentials").into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(serve).with_state(base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn auth(base: &str) -> MediaAuth {
    MediaAuth {
        graph_base_url: base.into(),
        graph_api_version: "v21.0".into(),
        whatsapp_token: Some("token-1".into()),
        twilio_account_sid: Some("AC1".into()),
        twilio_auth_token: Some("secret".into()),
    }
}

#[tokio::test]
async fn a_whatsapp_media_id_is_resolved_and_fetched_with_the_bearer_token() {
    let base = media_server().await;
    let source = AttachmentSource::WhatsappMedia {
        media_id: "MEDIA1".into(),
    };
    let fetched = fetch(&client().unwrap(), &auth(&base), &source, 1 << 20)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, PICTURE);
    let mut wrong = auth(&base);
    wrong.whatsapp_token = Some("not-the-token".into());
    let refused = fetch(&client().unwrap(), &wrong, &source, 1 << 20)
        .await
        .unwrap_err();
    assert!(
        !refused.retryable && refused.message.contains("HTTP 401"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_twilio_media_url_is_fetched_with_basic_auth_through_its_redirect() {
    let base = media_server().await;
    let source = AttachmentSource::TwilioUrl {
        url: format!("{base}/twilio/ME0"),
    };
    let fetched = fetch(&client().unwrap(), &auth(&base), &source, 1 << 20)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, PICTURE);
    let mut wrong = auth(&base);
    wrong.twilio_auth_token = Some("wrong".into());
    assert!(fetch(&client().unwrap(), &wrong, &source, 1 << 20)
        .await
        .is_err());
}

#[tokio::test]
async fn downloads_over_the_cap_are_refused_with_or_without_a_length() {
    let base = media_server().await;
    for path in ["big", "stream"] {
        let source = AttachmentSource::MetaUrl {
            url: format!("{base}/{path}"),
        };
        let refused = fetch(&client().unwrap(), &auth(&base), &source, 2048)
            .await
            .unwrap_err();
        assert!(!refused.retryable, "{path}: {refused}");
        assert!(
            refused.message.contains("larger than the 2048 bytes limit"),
            "{path}: {refused}"
        );
        let fine = fetch(&client().unwrap(), &auth(&base), &source, 1 << 20).await;
        assert!(fine.is_ok(), "{path}");
    }
}
