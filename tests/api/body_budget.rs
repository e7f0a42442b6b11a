//! The webhook byte budget (`[limits] inflight_body_mb`): while big email
//! posts hold the budget, one more is answered 503 with `Retry-After` before
//! its body is read; once they are gone the same post reaches the handler.

use crate::serve_helpers::*;
use frontdesk::config::Secret;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn big_bodies_in_flight_are_bounded_by_bytes_not_only_by_count() {
    let app = spawn_app_with("body-budget", None, None, |settings| {
        settings.limits.inflight_body_mb = 1;
        settings.limits.inflight_webhooks = 64;
        settings.email.signing_key = Some(Secret::new("body-budget-key"));
        settings.workers = 0;
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_string();
    let url = format!("{}/webhooks/email", app.base);

    // A post that says it carries 900 KB and sends only the start of it,
    // holding its reservation while the server waits for the rest.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /webhooks/email HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\nsender=",
        900 * 1000
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let body = format!(
        "sender=a%40example.com&body-plain={}",
        "x".repeat(400 * 1000)
    );
    let post = || {
        app.client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
    };
    let refused = post().await.unwrap();
    assert_eq!(
        refused.status().as_u16(),
        503,
        "a 400 KB post past a 1 MB budget holding 900 KB is shed"
    );
    assert!(
        refused.headers().contains_key("retry-after"),
        "the 503 says when to retry"
    );
    assert_eq!(
        refused
            .headers()
            .get("connection")
            .and_then(|value| value.to_str().ok()),
        Some("close"),
        "the unread body ends the connection, so no client reuses it"
    );
    // Small posts still fit beside the big one.
    let small = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("sender=a%40example.com")
        .send()
        .await
        .unwrap();
    assert_ne!(
        small.status().as_u16(),
        503,
        "a small post fits in what is left"
    );

    // The slow sender gives up: its bytes are freed and the same post gets in.
    drop(slow);
    let mut status = 503;
    for _ in 0..50 {
        status = post().await.unwrap().status().as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(
        status, 503,
        "with the budget free the post reaches the handler"
    );
    app.stop().await;
}
