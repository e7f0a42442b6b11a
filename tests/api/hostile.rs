//! Hostile input through the real router, in process (`tower::ServiceExt::
//! oneshot` on `http::app`, so ten thousand requests take seconds): a flood
//! of forged, truncated, re-encoded, wrong-algorithm, empty and replayed
//! signatures on every provider route and the web chat upload accepts none
//! and stores nothing; a Mailgun post works once; bodies past the limits are
//! refused unread; garbage on every public route never makes a 5xx. SQLite
//! and (when DATABASE_URL_TEST is set, as in CI) PostgreSQL.

use crate::serve_helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use frontdesk::config::Secret;
use frontdesk::http::webchat::{identity_signature, ChatHub, WebchatConfig};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower::ServiceExt;

const MAILGUN_KEY: &str = "hostile-mailgun-key";
const IDENTITY_SECRET: &str = "hostile-identity-secret";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-a-forged-cake";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hmac1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Spellings of a signature that must not pass: `right` truncated, in other
/// encodings, with blanks inside, and `wrong` digests (other key, other
/// algorithm, another request's) as hex in both cases and base64.
fn forgeries(right: &[u8], wrong: &[Vec<u8>], genuine: &[String]) -> Vec<String> {
    let hex_right = hex::encode(right);
    let mut out: Vec<String> = (0..hex_right.len())
        .step_by(3)
        .map(|cut| hex_right[..cut].to_string())
        .collect();
    out.extend([
        format!("{hex_right}0"),
        format!("0x{hex_right}"),
        format!("{} {}", &hex_right[..8], &hex_right[8..]),
        format!("{}\t{}", &hex_right[..20], &hex_right[20..]),
        STANDARD.encode(right),
        URL_SAFE_NO_PAD.encode(right),
        String::new(),
    ]);
    for digest in wrong {
        out.push(hex::encode(digest));
        out.push(hex::encode(digest).to_uppercase());
        out.push(STANDARD.encode(digest));
    }
    out.retain(|forged| !genuine.iter().any(|g| g == forged.trim()));
    out
}

struct Flood {
    router: axum::Router,
    sent: usize,
    accepted: Vec<String>,
}

impl Flood {
    async fn send(&mut self, what: &str, request: Request<Body>) -> StatusCode {
        let status = self.router.clone().oneshot(request).await.unwrap().status();
        self.sent += 1;
        if status.is_success() || status.is_server_error() {
            self.accepted.push(format!("{what}: {status}"));
        }
        status
    }
}

fn post(uri: &str, content_type: &str) -> axum::http::request::Builder {
    Request::post(uri).header("content-type", content_type)
}

fn form(fields: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

fn multipart(fields: &[(&str, String)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "hostile-boundary-7";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (name, content_type, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"p\"\r\nContent-Type: {content_type}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn flood_accepts_nothing(app: &TestApp) {
    let mut state = app.state.clone();
    state.chat_hub = Arc::new(ChatHub::new(WebchatConfig {
        identity_secret: Some(Secret::new(IDENTITY_SECRET)),
        allowed_origins: Vec::new(),
    }));
    let twilio_url = format!("{}/webhooks/twilio", state.public_base);
    let mut flood = Flood {
        router: frontdesk::http::app(state.clone()),
        sent: 0,
        accepted: Vec::new(),
    };
    let now = now_secs();

    // WhatsApp, Messenger and Instagram: X-Hub-Signature-256.
    for n in 0..56 {
        let (uri, body) = if n % 2 == 0 {
            (
                "/webhooks/whatsapp",
                whatsapp_payload("15550001234", &format!("wamid.forged.{n}"), "forged"),
            )
        } else {
            let object = if n % 4 == 1 { "page" } else { "instagram" };
            let body = serde_json::json!({"object": object, "entry": [{"id": "109876543210987", "time": 1, "messaging": [
                {"sender": {"id": "6543210987654321"}, "recipient": {"id": "109876543210987"}, "timestamp": 1,
                 "message": {"mid": format!("m_forged_{n}"), "text": "forged"}}]}]})
            .to_string();
            ("/webhooks/meta", body)
        };
        let right = hmac256(APP_SECRET.as_bytes(), body.as_bytes());
        let wrong = [
            hmac256(b"another-secret", body.as_bytes()),
            hmac256(APP_SECRET.as_bytes(), format!("{body} ").as_bytes()),
            hmac256(
                APP_SECRET.as_bytes(),
                whatsapp_payload("1", "replayed", "x").as_bytes(),
            ),
            hmac1(APP_SECRET.as_bytes(), body.as_bytes()),
            Sha256::digest(body.as_bytes()).to_vec(),
            vec![0; 32],
        ];
        let mut headers: Vec<Option<String>> = forgeries(&right, &wrong, &[])
            .into_iter()
            .map(|forged| Some(format!("sha256={forged}")))
            .collect();
        let hex_right = hex::encode(&right);
        for prefix in ["", "sha1=", "SHA256=", "sha256:", "sha512="] {
            headers.push(Some(format!("{prefix}{hex_right}")));
        }
        headers.push(None);
        for header in headers {
            let mut request = post(uri, "application/json").header("content-length", body.len());
            if let Some(header) = &header {
                request = request.header("X-Hub-Signature-256", header);
            }
            let status = flood
                .send(uri, request.body(Body::from(body.clone())).unwrap())
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {header:?}");
        }
    }

    // Twilio: X-Twilio-Signature over the public URL and the sorted fields.
    for n in 0..56 {
        let fields = [
            ("MessageSid", format!("SMforged{n:026}")),
            ("From", "+14155550123".to_string()),
            ("To", "+15005550006".to_string()),
            ("Body", "forged".to_string()),
            ("NumMedia", "0".to_string()),
        ];
        let body = form(&fields);
        let mut sorted: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        sorted.sort();
        let signed = |url: &str, key: &[u8], sha256: bool| {
            let mut data = url.as_bytes().to_vec();
            for (k, v) in &sorted {
                data.extend_from_slice(k.as_bytes());
                data.extend_from_slice(v.as_bytes());
            }
            if sha256 {
                hmac256(key, &data)
            } else {
                hmac1(key, &data)
            }
        };
        let right = signed(&twilio_url, TWILIO_TOKEN.as_bytes(), false);
        let genuine = STANDARD.encode(&right);
        let wrong = [
            signed(&twilio_url, b"another-token", false),
            signed(&format!("{twilio_url}/"), TWILIO_TOKEN.as_bytes(), false),
            signed(
                "https://elsewhere.example/webhooks/twilio",
                TWILIO_TOKEN.as_bytes(),
                false,
            ),
            signed(&twilio_url, TWILIO_TOKEN.as_bytes(), true),
            vec![0; 20],
        ];
        let mut headers: Vec<Option<String>> =
            forgeries(&right, &wrong, std::slice::from_ref(&genuine))
                .into_iter()
                .map(Some)
                .collect();
        headers.extend(
            (0..genuine.len())
                .step_by(2)
                .map(|cut| Some(genuine[..cut].to_string())),
        );
        headers.push(Some(hex::encode(&right)));
        headers.push(None);
        for header in headers {
            let mut request = post("/webhooks/twilio", "application/x-www-form-urlencoded");
            if let Some(header) = &header {
                request = request.header("X-Twilio-Signature", header);
            }
            let status = flood
                .send("twilio", request.body(Body::from(body.clone())).unwrap())
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "twilio {header:?}");
        }
    }

    // Mailgun: timestamp + token + signature fields, url-encoded and multipart.
    let mailgun_fields = |timestamp: &str, token: &str, signature: &str, n: usize| {
        vec![
            ("timestamp", timestamp.to_string()),
            ("token", token.to_string()),
            ("signature", signature.to_string()),
            ("from", "Ann Lee <ann@example.com>".to_string()),
            ("recipient", "hello@bakery.example".to_string()),
            ("stripped-text", "forged".to_string()),
            ("Message-Id", format!("<forged-{n}@example.com>")),
        ]
    };
    for n in 0..56 {
        let timestamp = (now - 30).to_string();
        let token = hex::encode(Sha256::digest(format!("token-{n}")))[..50].to_string();
        let right = hmac256(
            MAILGUN_KEY.as_bytes(),
            format!("{timestamp}{token}").as_bytes(),
        );
        let wrong = [
            hmac256(b"another-key", format!("{timestamp}{token}").as_bytes()),
            hmac256(
                MAILGUN_KEY.as_bytes(),
                format!("{token}{timestamp}").as_bytes(),
            ),
            hmac1(
                MAILGUN_KEY.as_bytes(),
                format!("{timestamp}{token}").as_bytes(),
            ),
            vec![0; 32],
        ];
        let mut signatures: Vec<(String, String)> = forgeries(&right, &wrong, &[])
            .into_iter()
            .map(|forged| (timestamp.clone(), forged))
            .collect();
        // Genuinely signed, but stale or from the future.
        for age in [15 * 60 + 5, 86_400, -(15 * 60) - 5] {
            let stale = (now - age).to_string();
            let signature = hex::encode(hmac256(
                MAILGUN_KEY.as_bytes(),
                format!("{stale}{token}").as_bytes(),
            ));
            signatures.push((stale, signature));
        }
        for (i, (timestamp, signature)) in signatures.into_iter().enumerate() {
            let fields = mailgun_fields(&timestamp, &token, &signature, n);
            let request = if i % 2 == 0 {
                post("/webhooks/email", "application/x-www-form-urlencoded")
                    .body(Body::from(form(&fields)))
            } else {
                let (content_type, body) =
                    multipart(&fields, &[("attachment-1", "image/png", PNG)]);
                post("/webhooks/email", &content_type).body(Body::from(body))
            };
            let status = flood.send("mailgun", request.unwrap()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "mailgun {signature:?} at {timestamp}"
            );
        }
    }

    // Web chat: a signed-in user's identity HMAC on a photo upload.
    for n in 0..56 {
        let user = format!("customer-{n}");
        let genuine = identity_signature(IDENTITY_SECRET, &user);
        let right = hex::decode(&genuine).unwrap();
        let wrong = [
            hex::decode(identity_signature("another-secret", &user)).unwrap(),
            hex::decode(identity_signature(
                IDENTITY_SECRET,
                &format!("customer-{}", n + 1),
            ))
            .unwrap(),
            hex::decode(identity_signature(&user, IDENTITY_SECRET)).unwrap(),
            Sha256::digest(user.as_bytes()).to_vec(),
        ];
        for forged in forgeries(&right, &wrong, &[]) {
            let fields = [
                ("visitor", format!("v-{n:02}-0123456789abcdefghijklmn")),
                ("client_id", format!("c-{n}")),
                ("user_id", user.clone()),
                ("user_signature", forged.clone()),
            ];
            let (content_type, body) = multipart(&fields, &[("photo", "image/png", PNG)]);
            let request = post("/chat/upload", &content_type)
                .body(Body::from(body))
                .unwrap();
            let status = flood.send("webchat", request).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "webchat {forged:?}");
        }
    }

    assert!(flood.accepted.is_empty(), "accepted: {:?}", flood.accepted);
    assert!(flood.sent >= 10_000, "only {} forged requests", flood.sent);
    assert_eq!(
        state.store.count_messages("in").await.unwrap(),
        0,
        "a forged request stored a message"
    );
    assert_eq!(state.store.replay_keys().await.unwrap(), 0);
    eprintln!("{} forged requests, 0 accepted, nothing stored", flood.sent);

    // One genuine Mailgun post is taken once; each replay of it is refused.
    let timestamp = now.to_string();
    let token = "a-genuine-token-used-once-0123456789abcdefghij";
    let signature = hex::encode(hmac256(
        MAILGUN_KEY.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    ));
    let genuine = form(&mailgun_fields(&timestamp, token, &signature, 999));
    let request = post("/webhooks/email", "application/x-www-form-urlencoded")
        .body(Body::from(genuine.clone()));
    let status = flood
        .router
        .clone()
        .oneshot(request.unwrap())
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    for replay in 0..200 {
        // The same signed pair, with the rest of the post changed or not.
        let body = if replay % 2 == 0 {
            genuine.clone()
        } else {
            form(&mailgun_fields(&timestamp, token, &signature, replay))
        };
        let request =
            post("/webhooks/email", "application/x-www-form-urlencoded").body(Body::from(body));
        assert_eq!(
            flood.send("mailgun replay", request.unwrap()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(flood.accepted.is_empty(), "accepted: {:?}", flood.accepted);
    assert_eq!(state.store.count_messages("in").await.unwrap(), 1);
    assert_eq!(state.store.replay_keys().await.unwrap(), 1);
}

fn configure(settings: &mut frontdesk::config::Settings) {
    settings.email.signing_key = Some(Secret::new(MAILGUN_KEY));
    // Answering is not under test: no worker competes for the one SQLite connection.
    settings.workers = 0;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_flood_is_refused_and_stores_nothing_on_sqlite() {
    let app = spawn_app_with("hostile-flood", None, None, configure).await;
    flood_accepts_nothing(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_flood_is_refused_and_stores_nothing_on_postgres() {
    let Some(url) = postgres_database("hostile_flood").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    let app = spawn_app_with("hostile-flood-pg", Some(url), None, configure).await;
    flood_accepts_nothing(&app).await;
    app.stop().await;
}

/// Bodies past the limits are refused before they are read whole, and
/// garbage on every public route is a 4xx, never a 5xx or a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_garbage_bodies_are_refused_on_every_public_route() {
    let app = spawn_app_with("hostile-garbage", None, None, configure).await;
    let router = frontdesk::http::app(app.state.clone());
    let send = |request: Request<Body>| {
        let router = router.clone();
        async move { router.oneshot(request).await.unwrap().status() }
    };
    let too_big = vec![b'{'; frontdesk::http::MAX_BODY_BYTES + 1];
    for uri in [
        "/webhooks/whatsapp",
        "/webhooks/meta",
        "/webhooks/twilio",
        "/login",
        "/setup",
    ] {
        let request = post(uri, "application/x-www-form-urlencoded")
            .header("content-length", too_big.len())
            .body(Body::from(too_big.clone()))
            .unwrap();
        assert_eq!(send(request).await, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
    }
    let upload_limit = frontdesk::http::upload_body_limit(app.state.settings.attachments.max_bytes);
    let too_big = vec![b'a'; upload_limit + 1];
    for uri in ["/webhooks/email", "/chat/upload"] {
        let request = post(uri, "multipart/form-data; boundary=x")
            .header("content-length", too_big.len())
            .body(Body::from(too_big.clone()))
            .unwrap();
        assert_eq!(send(request).await, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
    }
    // The same bodies streamed without a length: the limit is found while
    // reading, and it is still 413, not a malformed body.
    for (uri, content_type) in [
        ("/webhooks/email", "application/x-www-form-urlencoded"),
        ("/webhooks/email", "multipart/form-data; boundary=x"),
        ("/chat/upload", "multipart/form-data; boundary=x"),
    ] {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            too_big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        let request = post(uri, content_type)
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap();
        assert_eq!(
            send(request).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "streamed {uri} {content_type}"
        );
    }

    let mut garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\0\xff\xfe".to_vec(),
        b"password=".to_vec(),
        b"password=%ff%fe&password=a".to_vec(),
        b"token=%0d%0aSet-Cookie:x&password=short".to_vec(),
        format!("token={}&password=longenough", "a".repeat(10_000)).into_bytes(),
        b"--x\r\nContent-Disposition: form-data; name=\"timestamp\"\r\n\r\n1".to_vec(),
        b"--x\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a\"\r\n\r\n\x89PNG".to_vec(),
        b"--x--\r\n".to_vec(),
        "[".repeat(100_000).into_bytes(),
        b"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":\"messages\",\"value\":1e999}]}]}".to_vec(),
        "NumMedia=99999999999999999999&MessageSid=SM1&From=a&To=b".as_bytes().to_vec(),
        "é\u{202e}👍".repeat(1000).into_bytes(),
    ];
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for n in 0..60 {
        let bytes: Vec<u8> = (0..(n * 37) % 700)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        garbage.push(bytes);
    }
    let content_types = [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "multipart/form-data",
        "text/plain",
    ];
    let routes = [
        "/webhooks/whatsapp",
        "/webhooks/meta",
        "/webhooks/twilio",
        "/webhooks/email",
        "/chat/upload",
        "/login",
        "/setup",
        "/logout",
    ];
    for body in &garbage {
        for uri in routes {
            for content_type in content_types {
                let request = post(uri, content_type)
                    .body(Body::from(body.clone()))
                    .unwrap();
                let status = send(request).await;
                assert!(
                    !status.is_server_error()
                        && (status.is_client_error() || status.is_redirection()),
                    "{uri} ({content_type}) answered {status} to {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(80)])
                );
            }
        }
    }
    assert_eq!(app.state.store.count_messages("in").await.unwrap(), 0);
    app.stop().await;
}
