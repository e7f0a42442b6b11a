//! The web chat channel end to end: the widget's files, and a real WebSocket
//! client talking to the real server (store, answer worker, delivery worker).
//!
//! `widget_answers_a_question_in_a_real_browser` also drives headless Chromium
//! through tests/browser/webchat.mjs (it needs `/usr/bin/chromium`, or
//! `$CHROMIUM`, and `npm ci` in tests/browser/; `.ci/run` sets both up).

use crate::serve_helpers::*;
use frontdesk::config::Secret;
use frontdesk::http::webchat::{identity_signature, ChatHub, WebchatConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const QUESTION: &str = "do you deliver to brooklyn?";

fn socket_url(base: &str) -> String {
    format!("{}/chat/socket", base.replacen("http://", "ws://", 1))
}

async fn connect(base: &str) -> Socket {
    tokio_tungstenite::connect_async(socket_url(base))
        .await
        .expect("the socket opens")
        .0
}

/// A visitor token as the widget makes one (128 random bits, hex).
fn visitor() -> String {
    frontdesk::store::new_id()
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// What the server sent next: a JSON frame, or `{"closed": code}`, or None
/// when nothing came within `seconds`.
async fn next(socket: &mut Socket, seconds: u64) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let read = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()?;
        match read {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                return Some(json!({ "closed": code }));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Some(json!({ "closed": 0 })),
        }
    }
}

/// Reads frames until one matches; returns all of them, the match last.
async fn until(socket: &mut Socket, seconds: u64, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while let Some(frame) = next(socket, seconds).await {
        let finished = done(&frame);
        seen.push(frame);
        if finished || std::time::Instant::now() > deadline {
            return seen;
        }
    }
    panic!("no matching frame within {seconds}s; got {seen:?}");
}

/// Says hello and reads the replay; returns the replayed message frames.
async fn hello(socket: &mut Socket, visitor: &str, last_seen: Option<&str>) -> Vec<Value> {
    send(
        socket,
        json!({"type": "hello", "visitor": visitor, "last_seen": last_seen}),
    )
    .await;
    let mut frames = until(socket, 10, |f| f["type"] == "ready").await;
    let ready = frames.pop().unwrap();
    assert_eq!(ready["replayed"], frames.len(), "{frames:?}");
    assert!(frames.iter().all(|f| f["type"] == "message"), "{frames:?}");
    frames
}

/// Sends a message and waits for its ack; returns the stored message id.
async fn say(socket: &mut Socket, client_id: &str, text: &str) -> String {
    send(
        socket,
        json!({"type": "message", "client_id": client_id, "text": text}),
    )
    .await;
    let frames = until(socket, 10, |f| f["type"] == "ack" || f["type"] == "error").await;
    let ack = frames.last().unwrap();
    assert_eq!(ack["type"], "ack", "{frames:?}");
    assert_eq!(ack["client_id"], client_id);
    ack["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_loader_is_small_javascript_and_the_chat_files_are_served() {
    let app = spawn_app("webchat-assets", None, None).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    let loader = get("/widget.js").await.unwrap();
    assert_eq!(loader.status(), 200);
    let content_type = loader.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/javascript"),
        "{content_type}"
    );
    let loader = loader.text().await.unwrap();
    assert!(
        loader.len() < 5 * 1024,
        "the loader is {} bytes; keep it under 5 KB",
        loader.len()
    );
    assert!(loader.contains("window") && loader.contains("Frontdesk"));
    assert!(!loader.contains("__FRONTDESK_CHAT_VERSION__"));
    let version = loader
        .split("var version = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the loader names the chat files' version")
        .to_string();

    let app_js = get(&format!("/chat/app.js?v={version}")).await.unwrap();
    assert_eq!(app_js.status(), 200);
    assert!(app_js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(app_js.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(app_js.text().await.unwrap().contains("Frontdesk._start"));
    let css = get("/chat/app.css").await.unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert_eq!(css.headers()["cache-control"], "no-cache");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webchat_message_is_acked_answered_replayed_and_answered_once() {
    let app = spawn_app("webchat-answer", None, None).await;
    let visitor = visitor();
    let mut socket = connect(&app.base).await;
    assert!(hello(&mut socket, &visitor, None).await.is_empty());

    let question_id = say(&mut socket, "c-1", QUESTION).await;
    let frames = until(&mut socket, 30, |f| f["type"] == "message").await;
    let reply = frames.last().unwrap().clone();
    assert_eq!(reply["from"], "assistant", "{reply}");
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("deliver"),
        "{reply}"
    );
    assert_ne!(reply["id"], question_id);
    assert!(reply["at"].as_i64().unwrap() > 0);
    socket.close(None).await.unwrap();

    // Reconnecting after the question replays the reply, and only the reply.
    let mut socket = connect(&app.base).await;
    let replayed = hello(&mut socket, &visitor, Some(&question_id)).await;
    assert_eq!(replayed, vec![reply.clone()]);

    // The browser resends the question (its ack was lost): same id, no second answer.
    assert_eq!(say(&mut socket, "c-1", QUESTION).await, question_id);
    assert_eq!(
        next(&mut socket, 3).await,
        None,
        "a resent message was answered"
    );
    let (jobs, outbox, _) = app.state.store.depths().await.unwrap();
    assert_eq!((jobs, outbox), (0, 0));

    // A reloaded page (no last_seen) gets the whole conversation.
    let mut socket = connect(&app.base).await;
    let history = hello(&mut socket, &visitor, None).await;
    let texts: Vec<(&str, &str)> = history
        .iter()
        .map(|f| (f["from"].as_str().unwrap(), f["text"].as_str().unwrap()))
        .collect();
    assert_eq!(texts.len(), 2, "{history:?}");
    assert_eq!(texts[0], ("customer", QUESTION));
    assert_eq!(history[1], reply);
    // Nobody else sees it.
    let mut stranger = connect(&app.base).await;
    assert!(hello(&mut stranger, &self::visitor(), None)
        .await
        .is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_to_a_visitor_who_left_is_replayed_when_they_return() {
    let app = spawn_app("webchat-offline", None, None).await;
    let visitor = visitor();
    let mut socket = connect(&app.base).await;
    hello(&mut socket, &visitor, None).await;
    let question_id = say(&mut socket, "c-1", "what time do you open on saturday?").await;
    drop(socket);
    // The reply is written and "sent" while nobody is listening.
    let mut settled = false;
    for _ in 0..300 {
        if app.state.store.depths().await.unwrap() == (0, 0, 0) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settled, "the reply was not processed");
    let mut socket = connect(&app.base).await;
    let replayed = hello(&mut socket, &visitor, Some(&question_id)).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["from"], "assistant");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_refuses_bad_frames_long_text_and_binary() {
    let app = spawn_app("webchat-limits", None, None).await;

    // Anything before hello closes the socket.
    let mut socket = connect(&app.base).await;
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c", "text": "hi"}),
    )
    .await;
    let frames = until(&mut socket, 5, |f| f.get("closed").is_some()).await;
    assert_eq!(frames[0]["code"], "bad_frame", "{frames:?}");
    assert_eq!(frames.last().unwrap()["closed"], 1008);

    // A short, guessable visitor token is refused.
    let mut socket = connect(&app.base).await;
    send(&mut socket, json!({"type": "hello", "visitor": "bob"})).await;
    let frames = until(&mut socket, 5, |f| f.get("closed").is_some()).await;
    assert_eq!(frames[0]["code"], "bad_visitor", "{frames:?}");

    // Too long: refused with the client id, the socket stays open.
    let visitor = visitor();
    let mut socket = connect(&app.base).await;
    hello(&mut socket, &visitor, None).await;
    send(
        &mut socket,
        json!({"type": "message", "client_id": "long-1", "text": "a".repeat(2_001)}),
    )
    .await;
    let refused = next(&mut socket, 5).await.unwrap();
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "too_long");
    assert_eq!(refused["client_id"], "long-1");
    send(
        &mut socket,
        json!({"type": "message", "client_id": "e", "text": "  "}),
    )
    .await;
    assert_eq!(next(&mut socket, 5).await.unwrap()["code"], "empty");

    // Binary frames close the socket with 1003 (unsupported data).
    socket
        .send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    let frames = until(&mut socket, 5, |f| f.get("closed").is_some()).await;
    assert_eq!(frames.last().unwrap()["closed"], 1003);
    assert_eq!(app.state.store.depths().await.unwrap(), (0, 0, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_and_origin_are_checked_when_configured() {
    let app = spawn_app("webchat-identity", None, None).await;
    // The same app with web chat settings, served on a second port.
    let mut state = app.state.clone();
    state.chat_hub = Arc::new(ChatHub::new(WebchatConfig {
        identity_secret: Some(Secret::new("shop-identity-secret")),
        allowed_origins: vec!["https://shop.example".into()],
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, frontdesk::http::app(state))
            .await
            .unwrap()
    });
    let open = |origin: &'static str| {
        let mut request = socket_url(&base).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    assert!(
        open("https://elsewhere.example").await.is_err(),
        "a page from another site opened a socket"
    );

    let hello_as = |signature: String| {
        json!({"type": "hello", "visitor": visitor(), "last_seen": null,
               "user": {"id": "customer-42", "signature": signature}})
    };
    let mut socket = open("https://shop.example").await.unwrap().0;
    send(
        &mut socket,
        hello_as(identity_signature("a-guessed-secret", "customer-42")),
    )
    .await;
    let frames = until(&mut socket, 5, |f| f.get("closed").is_some()).await;
    assert_eq!(frames[0]["code"], "identity", "{frames:?}");
    assert_eq!(frames.last().unwrap()["closed"], 1008);

    let mut socket = open("https://shop.example").await.unwrap().0;
    send(
        &mut socket,
        hello_as(identity_signature("shop-identity-secret", "customer-42")),
    )
    .await;
    assert_eq!(next(&mut socket, 5).await.unwrap()["type"], "ready");
    server.abort();
    app.stop().await;
}

/// A shop's page on its own origin with the one-line embed.
async fn serve_shop_page(frontdesk_base: &str) -> (String, tokio::task::JoinHandle<()>) {
    let page = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sample bakery</title>\
         <meta name=viewport content='width=device-width, initial-scale=1'></head>\
         <body style='font-family:sans-serif;margin:40px'><h1>Sample bakery</h1>\
         <p>Cakes, bread and pastries, baked every morning.</p>\
         <script src=\"{frontdesk_base}/widget.js\" async></script></body></html>"
    );
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_answers_a_question_in_a_real_browser() {
    assert!(
        crate::helpers::repo()
            .join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "run `npm ci` in tests/browser (see tests/browser/README.md)"
    );
    let app = spawn_app("webchat-browser", None, None).await;
    let (shop, server) = serve_shop_page(&app.base).await;
    let script = crate::helpers::repo().join("tests/browser/webchat.mjs");
    let screenshot =
        std::env::var("FRONTDESK_BROWSER_SCREENSHOT").unwrap_or_else(|_| "/tmp/webchat.png".into());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(shop)
            .arg(screenshot)
            .output()
    })
    .await
    .unwrap()
    .expect("node runs (install Node.js, and `npm ci` in tests/browser)");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "browser test failed:\n{log}");
    eprintln!("{log}");
    server.abort();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_reply_from_the_inbox_reaches_the_visitors_socket() {
    let app = spawn_app("webchat-inbox-reply", None, None).await;
    frontdesk::http::auth::set_owner_password(&app.state.store, crate::inbox_api::PASSWORD)
        .await
        .unwrap();
    let owner = crate::inbox_api::sign_in(&app, crate::inbox_api::PASSWORD)
        .await
        .unwrap();
    let visitor = visitor();
    let mut socket = connect(&app.base).await;
    hello(&mut socket, &visitor, None).await;
    say(&mut socket, "c-1", "can I speak to a person?").await;
    // The hand-over message first.
    until(&mut socket, 30, |f| {
        f["type"] == "message" && f["from"] == "assistant"
    })
    .await;
    let list = owner.get(&app, "/api/conversations?view=needs_you").await;
    let conversation = &list["conversations"][0];
    assert_eq!(conversation["channel"], "webchat");
    assert!(conversation["window"].is_null());
    let id = conversation["id"].as_str().unwrap();
    let reply = owner
        .post(
            &app,
            &format!("/api/conversations/{id}/reply"),
            json!({"text": "Hi! Jasmine here, what can I do for you?"}),
        )
        .await;
    assert_eq!(reply.status(), 202);
    let frames = until(&mut socket, 30, |f| {
        f["type"] == "message" && f["from"] == "human"
    })
    .await;
    assert_eq!(
        frames.last().unwrap()["text"],
        "Hi! Jasmine here, what can I do for you?"
    );
    app.stop().await;
}
