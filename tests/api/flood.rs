//! A flood against the real `serve` process with small `[limits]`: one
//! abusive sender posts as fast as many connections allow while normal
//! customers post one message each and retry, as providers do, after a 503 or
//! 429 (waiting what `Retry-After` says). The server must turn load back with
//! 503 / 429 carrying `Retry-After`, acknowledge every normal customer in the
//! end, store and answer every message it acknowledged, and stay under
//! 512 MB of resident memory with its models loaded. Counts and bounds only,
//! never speed. On SQLite, and on PostgreSQL with `DATABASE_URL_TEST`.

use crate::serve_helpers::*;
use crate::serve_process::*;
use frontdesk::domain::Channel;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ABUSER: &str = "18880000001";
const NORMAL_CUSTOMERS: usize = 60;
const ABUSE_LANES: usize = 32;
const POSTS_PER_ABUSE_LANE: usize = 25;
const RSS_LIMIT_KB: u64 = 512 * 1024;

/// The server's resident memory (VmRSS, kB), if the process still exists.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What the senders saw.
#[derive(Default)]
struct Seen {
    shed: AtomicUsize,
    limited: AtomicUsize,
    /// 503 or 429 without a `Retry-After` header: must stay 0.
    refused_without_retry_after: AtomicUsize,
}

impl Seen {
    fn record(&self, response: &reqwest::Response) {
        let status = response.status().as_u16();
        if status != 503 && status != 429 {
            return;
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if retry_after.is_none() {
            self.refused_without_retry_after
                .fetch_add(1, Ordering::SeqCst);
        }
        if status == 503 {
            self.shed.fetch_add(1, Ordering::SeqCst);
        } else {
            self.limited.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn retry_after(response: &reqwest::Response) -> Duration {
    let seconds = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    // Honoured, capped so the test's own run stays short.
    Duration::from_secs(seconds.min(2))
}

async fn flood_run(target: Target) {
    let (fake_base, fake) = start_fake_providers().await;
    let (mut child, port) = start_server_with(
        &target,
        &fake_base,
        0,
        &[
            ("FRONTDESK_LIMITS_INFLIGHT_WEBHOOKS", "4"),
            ("FRONTDESK_LIMITS_SENDER_BURST", "5"),
            ("FRONTDESK_LIMITS_SENDER_PER_MINUTE", "30"),
        ],
    );
    let pid = child.id();

    // Resident memory sampled all through the flood and the answering after it.
    let sampling = Arc::new(AtomicBool::new(true));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (sampling, peak_rss) = (sampling.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::SeqCst) {
                if let Some(kb) = rss_kb(pid) {
                    peak_rss.fetch_max(kb, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/webhooks/whatsapp");
    let seen = Arc::new(Seen::default());
    let abuser_acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));

    // The abusive sender: every post once, as fast as it can, never waiting.
    let mut tasks = Vec::new();
    for lane in 0..ABUSE_LANES {
        let (client, url, seen, acked) = (
            client.clone(),
            url.clone(),
            seen.clone(),
            abuser_acknowledged.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for n in 0..POSTS_PER_ABUSE_LANE {
                let wamid = format!("wamid.abuse.{lane}.{n}");
                let body = whatsapp_payload(ABUSER, &wamid, "what time do you open on saturday?");
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("X-Hub-Signature-256", sign(&body))
                    .body(body)
                    .send()
                    .await;
                if let Ok(response) = sent {
                    seen.record(&response);
                    if response.status() == 200 {
                        acked.lock().unwrap().push(wamid);
                    }
                }
            }
        }));
    }

    // Normal customers: one message each, retried until acknowledged.
    let normal_acknowledged = Arc::new(AtomicUsize::new(0));
    let normal_lanes = 16;
    for lane in 0..normal_lanes {
        let (client, url, seen, acked) = (
            client.clone(),
            url.clone(),
            seen.clone(),
            normal_acknowledged.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for n in (lane..NORMAL_CUSTOMERS).step_by(normal_lanes) {
                let body = whatsapp_payload(
                    &customer(n),
                    &format!("wamid.flood.{n}"),
                    "what time do you open on saturday?",
                );
                let signature = sign(&body);
                // A bound on tries, not on time: a customer never let in fails the test.
                for _attempt in 0..500 {
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("X-Hub-Signature-256", &signature)
                        .body(body.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            acked.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        Ok(response) => {
                            seen.record(&response);
                            tokio::time::sleep(retry_after(&response)).await;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let abuser_acknowledged = abuser_acknowledged.lock().unwrap().clone();
    let outcome = settle_and_count(&target, &fake, NORMAL_CUSTOMERS, 120).await;
    sampling.store(false, Ordering::SeqCst);
    sampler.join().unwrap();
    let still_serving = child.try_wait().unwrap().is_none();

    let store = target.store().await;
    let mut abuser_missing = 0;
    for wamid in &abuser_acknowledged {
        if store
            .message_id_by_provider_id(Channel::Whatsapp, wamid)
            .await
            .unwrap()
            .is_none()
        {
            abuser_missing += 1;
        }
    }
    let (jobs_left, outbox_left, _) = store.depths().await.unwrap();
    let sends = fake.sends();
    let abuser_replies = sends.iter().filter(|sent| sent.to == ABUSER).count();
    let normal_duplicates: usize = (0..NORMAL_CUSTOMERS)
        .map(|n| {
            let who = customer(n);
            sends
                .iter()
                .filter(|sent| sent.to == who)
                .count()
                .saturating_sub(1)
        })
        .sum();
    child.kill().ok();
    let _ = child.wait();
    let peak_mb = peak_rss.load(Ordering::SeqCst) / 1024;
    println!(
        "flood ({}): {} abusive posts, {} acknowledged ({} replies to them); {NORMAL_CUSTOMERS} customers, {} acknowledged; shed 503: {}, limited 429: {}, without Retry-After: {}; {outcome:?}; peak RSS {peak_mb} MB",
        target.label(),
        ABUSE_LANES * POSTS_PER_ABUSE_LANE,
        abuser_acknowledged.len(),
        abuser_replies,
        normal_acknowledged.load(Ordering::SeqCst),
        seen.shed.load(Ordering::SeqCst),
        seen.limited.load(Ordering::SeqCst),
        seen.refused_without_retry_after.load(Ordering::SeqCst),
    );

    assert!(still_serving, "serve survives the flood");
    assert!(
        seen.shed.load(Ordering::SeqCst) > 0,
        "the flood is shed with 503"
    );
    assert!(
        seen.limited.load(Ordering::SeqCst) > 0,
        "the abusive sender is rate-limited with 429"
    );
    assert_eq!(
        seen.refused_without_retry_after.load(Ordering::SeqCst),
        0,
        "every 503 / 429 says when to retry"
    );
    assert!(
        abuser_acknowledged.len() < ABUSE_LANES * POSTS_PER_ABUSE_LANE,
        "the abusive sender is not let in whole"
    );
    assert_eq!(
        normal_acknowledged.load(Ordering::SeqCst),
        NORMAL_CUSTOMERS,
        "every normal customer is acknowledged in the end"
    );
    assert_eq!(abuser_missing, 0, "an acknowledged message is stored");
    let distinct: HashSet<&String> = abuser_acknowledged.iter().collect();
    assert_eq!(
        outcome.stored,
        NORMAL_CUSTOMERS + distinct.len(),
        "exactly the acknowledged messages are stored"
    );
    assert_eq!(
        (jobs_left, outbox_left),
        (0, 0),
        "every stored message is answered or settled"
    );
    assert_eq!(outcome.lost, 0, "a normal customer left without a reply");
    assert_eq!(
        normal_duplicates, 0,
        "duplicate replies to a normal customer"
    );
    assert!(
        peak_rss.load(Ordering::SeqCst) <= RSS_LIMIT_KB,
        "resident memory stays under 512 MB (peak {peak_mb} MB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flood_is_shed_with_retry_after_and_nothing_acknowledged_is_lost_on_sqlite() {
    flood_run(Target {
        data: crate::helpers::scratch("flood"),
        database_url: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flood_is_shed_with_retry_after_and_nothing_acknowledged_is_lost_on_postgres() {
    let Some(url) = postgres_database("flood").await else {
        eprintln!("DATABASE_URL_TEST not set: skipping the PostgreSQL flood test");
        return;
    };
    flood_run(Target {
        data: crate::helpers::scratch("flood-pg"),
        database_url: Some(url),
    })
    .await;
}
