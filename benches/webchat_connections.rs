//! `cargo bench --bench webchat_connections`: holds N web chat sockets open on
//! the real server (default 1,000) while a share of them ask a question, and
//! reports how many stayed connected and how long answers took. Loopback only;
//! bounded in count and time. Prints figures, asserts nothing.
//!
//! FRONTDESK_BENCH_SOCKETS (default 1000), FRONTDESK_BENCH_ASKING (default 100).

use frontdesk::config::Settings;
use frontdesk::startup::{self, Application, Paths};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let sockets = number("FRONTDESK_BENCH_SOCKETS", 1000);
    let asking = number("FRONTDESK_BENCH_ASKING", 100).min(sockets);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let data = std::env::temp_dir().join(format!("frontdesk-bench-chat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let paths = Paths { knowledge: repo.join("knowledge"), models: repo.join("models"), data: repo.join("data") };
        let assistant = tokio::task::spawn_blocking(move || {
            let embedder = startup::load_embedder(&paths).unwrap();
            Arc::new(startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder).unwrap())
        })
        .await
        .unwrap();
        let settings = Settings { listen: "127.0.0.1:0".into(), data_dir: data.clone(), workers: 2, ..Settings::default() };
        let application = Application::build(settings, Some(assistant)).await.unwrap();
        let url = format!("ws://{}/chat/socket", application.address());
        tokio::spawn(application.run_until(std::future::pending()));

        let started = Instant::now();
        let mut connections = Vec::with_capacity(sockets);
        for _ in 0..sockets {
            let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.expect("socket opens");
            let visitor = frontdesk::store::new_id();
            socket.send(Message::Text(json!({"type": "hello", "visitor": visitor, "last_seen": null}).to_string().into())).await.unwrap();
            connections.push(socket);
        }
        println!("opened {sockets} sockets in {:.2} s", started.elapsed().as_secs_f64());

        // Every socket: read frames in its own task; the asking ones send a question.
        let mut tasks = Vec::new();
        for (n, socket) in connections.into_iter().enumerate() {
            let ask = n < asking;
            tasks.push(tokio::spawn(async move {
                let (mut sink, mut stream) = socket.split();
                let sent = Instant::now();
                if ask {
                    let frame = json!({"type": "message", "client_id": format!("c{n}"), "text": "are you open on sunday?"});
                    sink.send(Message::Text(frame.to_string().into())).await.ok()?;
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(if ask { 120 } else { 20 });
                let mut answered = None;
                loop {
                    match tokio::time::timeout_at(deadline, stream.next()).await {
                        Ok(Some(Ok(Message::Text(text)))) => {
                            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                            if ask && value["type"] == "message" && value["from"] == "assistant" {
                                answered = Some(sent.elapsed().as_secs_f64() * 1000.0);
                                break;
                            }
                        }
                        Ok(Some(Ok(_))) => {}
                        Ok(Some(Err(_))) | Ok(None) => return Some((false, answered)),
                        Err(_) => break, // deadline: still open
                    }
                }
                // Still connected? A ping must go through.
                let alive = sink.send(Message::Ping(Vec::new().into())).await.is_ok();
                Some((alive, answered))
            }));
        }
        let mut alive = 0;
        let mut latencies = Vec::new();
        for task in tasks {
            if let Ok(Some((open, answered))) = task.await {
                alive += usize::from(open);
                latencies.extend(answered);
            }
        }
        latencies.sort_by(f64::total_cmp);
        let pick = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
        println!(
            "sockets held open: {alive} of {sockets}; answers received: {} of {asking}; answer latency p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            latencies.len(),
            pick(0.5),
            pick(0.95),
            latencies.last().copied().unwrap_or(f64::NAN)
        );
        let _ = std::fs::remove_dir_all(&data);
    });
}
