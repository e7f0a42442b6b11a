//! The crash test: signed WhatsApp webhooks are posted while the real `serve`
//! process is killed with SIGKILL and restarted several times. Afterwards every
//! acknowledged message must be stored once and answered exactly once.
//!
//! Short by default (CI); the long version: FRONTDESK_CRASH_MESSAGES=5000
//! FRONTDESK_CRASH_KILLS=8 cargo test --release --test api crash -- --nocapture

use crate::serve_helpers::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts `frontdesk serve` and returns it with the port it reports.
fn start_server(data: &std::path::Path, fake_base: &str, port: u16) -> (Child, u16) {
    let repo = crate::helpers::repo();
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(&repo)
        .arg("serve")
        .env("FRONTDESK_LISTEN", format!("127.0.0.1:{port}"))
        .env("FRONTDESK_DATA_DIR", data)
        .env("FRONTDESK_KNOWLEDGE", repo.join("knowledge"))
        .env("FRONTDESK_GRAPH_BASE_URL", fake_base)
        .env("FRONTDESK_WHATSAPP_APP_SECRET", APP_SECRET)
        .env("FRONTDESK_WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN)
        .env("FRONTDESK_WORKERS", "2")
        .env("FRONTDESK_LOG", "warn")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("frontdesk serve starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("frontdesk listening on http://") {
                let _ = tx.send(
                    address
                        .rsplit(':')
                        .next()
                        .unwrap_or("0")
                        .parse::<u16>()
                        .unwrap_or(0),
                );
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve reports its port");
    (child, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_load_loses_nothing_and_answers_each_message_once() {
    let messages = env_number("FRONTDESK_CRASH_MESSAGES", 2000);
    let kills = env_number("FRONTDESK_CRASH_KILLS", 3);
    let (fake_base, fake) = start_fake_providers().await;
    let data = crate::helpers::scratch("crash");
    let (child, port) = start_server(&data, &fake_base, 0);
    let server = Arc::new(Mutex::new(child));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    // Senders: like a provider, retry each message until it is acknowledged.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}/webhooks/whatsapp");
    let mut senders = Vec::new();
    let lanes = 8;
    for lane in 0..lanes {
        let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
        senders.push(tokio::spawn(async move {
            for n in (lane..messages).step_by(lanes) {
                let body = whatsapp_payload(
                    &format!("1999{n:07}"),
                    &format!("wamid.crash.{n}"),
                    "what time do you open on saturday?",
                );
                let signature = sign(&body);
                loop {
                    let sent = client
                        .post(&base)
                        .header("content-type", "application/json")
                        .header("X-Hub-Signature-256", &signature)
                        .body(body.clone())
                        .send()
                        .await;
                    if matches!(&sent, Ok(response) if response.status() == 200) {
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }

    // The killer: SIGKILL at intervals while messages are still arriving, then
    // restart on the same port and data dir.
    for kill in 0..kills {
        let target = messages * (kill + 1) / (kills + 1);
        while acknowledged.load(Ordering::SeqCst) < target {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut child = server.lock().unwrap();
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let (restarted, _) = start_server(&data, &fake_base, port);
        *child = restarted;
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let ingest_seconds = started.elapsed().as_secs_f64();

    // Done when the outbox is drained (every reply sent or settled).
    let probe = frontdesk::store::Store::connect(&frontdesk::store::Store::sqlite_url(&data))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        let (jobs, outbox, _) = probe.depths().await.unwrap();
        if jobs == 0
            && outbox == 0
            && probe.count_messages("out").await.unwrap() as usize >= messages
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_answered = fake.sends().len()
        + probe.count_queue("delivery_unknown").await.unwrap() as usize
        >= messages;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.lock().unwrap().kill().ok();

    let store = frontdesk::store::Store::connect(&frontdesk::store::Store::sqlite_url(&data))
        .await
        .unwrap();
    let stored_inbound = store.count_messages("in").await.unwrap();
    let mut per_customer = std::collections::HashMap::new();
    for sent in fake.sends() {
        *per_customer.entry(sent.to).or_insert(0usize) += 1;
    }
    let answered = per_customer.len();
    let duplicates: usize = per_customer.values().map(|n| n - 1).sum();
    // A send cut off by SIGKILL is neither repeated nor dropped: it goes to a person.
    let handed_over = store.count_queue("delivery_unknown").await.unwrap() as usize;
    let lost = messages.saturating_sub(answered + handed_over);
    println!(
        "crash test: {messages} messages, {kills} SIGKILLs, acknowledged {}, stored {stored_inbound}, answered {answered}, interrupted sends handed to a person {handed_over}, lost {lost}, duplicate replies {duplicates}, ingest {ingest_seconds:.1}s, total {:.1}s",
        acknowledged.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(acknowledged.load(Ordering::SeqCst), messages);
    assert_eq!(
        stored_inbound as usize, messages,
        "every acknowledged message is stored exactly once"
    );
    assert!(all_answered, "lost {lost} replies");
    // The server runs the default FRONTDESK_DELIVERY_CONCURRENCY of 8 sends at once.
    assert!(
        handed_over <= kills * 8,
        "at most 8 sends are in flight per kill"
    );
    assert_eq!(lost, 0);
    assert_eq!(duplicates, 0, "duplicate replies");
}
