//! The figures of BENCHMARKS.md "Provider outage": 40 WhatsApp customers write
//! while the Graph API is down for 20 s (every send answered 500, the first one
//! held until the client's 30 s timeout), then it recovers. Prints the time
//! from recovery until every reply was delivered or handed to a person, and
//! how long a ready reply waited.
//!
//! Runs only when asked (it takes a minute):
//! `FRONTDESK_OUTAGE_BENCH=1 cargo test --release --test api outage_bench -- --nocapture`

use crate::faults::{start_faulty_providers, Fault, Outage};
use crate::serve_helpers::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_bench_forty_customers_twenty_second_graph_outage() {
    if std::env::var("FRONTDESK_OUTAGE_BENCH").is_err() {
        eprintln!("FRONTDESK_OUTAGE_BENCH not set: the outage benchmark is skipped");
        return;
    }
    let customers = 40;
    let outage_ms = 20_000;
    let (base, faulty) = start_faulty_providers().await;
    let app = spawn_app_with(
        "outage-bench",
        None,
        Some((base, faulty.fake.clone())),
        |settings| settings.workers = 2,
    )
    .await;
    let started_ms = frontdesk::store::now_ms();
    faulty.outage(Outage {
        until: Instant::now() + Duration::from_millis(outage_ms as u64),
        fault: Fault::ServerError,
        hang_first: 1,
    });
    let recovered_ms = started_ms + outage_ms;
    let customer = |n: usize| format!("1555888{n:04}");
    for n in 0..customers {
        let body = whatsapp_payload(
            &customer(n),
            &format!("wamid.outage.{n}"),
            "do you deliver to brooklyn?",
        );
        assert_eq!(
            app.post_whatsapp(&body, Some(sign(&body))).await.status(),
            200
        );
    }
    let deadline = Instant::now() + Duration::from_secs(150);
    let (mut delivered, mut handed_over) = (0, 0);
    while Instant::now() < deadline {
        delivered = app.fake.sends().len();
        handed_over = app
            .state
            .store
            .count_queue("delivery_unknown")
            .await
            .unwrap() as usize;
        if delivered + handed_over >= customers {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settled_ms = frontdesk::store::now_ms();
    let sends = app.fake.sends();
    let mut waits = Vec::new();
    let mut per_customer = std::collections::HashMap::new();
    for sent in &sends {
        *per_customer.entry(sent.to.clone()).or_insert(0usize) += 1;
        let conversation = app
            .state
            .store
            .conversation_of(&sent.to)
            .await
            .unwrap()
            .unwrap();
        let messages = app.state.store.messages(&conversation).await.unwrap();
        let reply = messages.iter().find(|m| m.direction == "out").unwrap();
        waits.push(sent.at_ms - reply.created_ms);
    }
    waits.sort();
    let last_delivery_ms = sends.iter().map(|s| s.at_ms).max().unwrap_or(started_ms);
    let duplicates: usize = per_customer.values().map(|n| n - 1).sum();
    println!(
        "outage bench: {customers} customers, {outage_ms} ms outage; delivered {delivered}, handed to a person {handed_over}, duplicates {duplicates}, attempts {}; last delivery {:.1} s after recovery (all settled {:.1} s after); ready reply waited p50 {:.1} s, max {:.1} s",
        faulty.attempts().len(),
        (last_delivery_ms - recovered_ms) as f64 / 1000.0,
        (settled_ms - recovered_ms) as f64 / 1000.0,
        waits.get(waits.len() / 2).copied().unwrap_or(0) as f64 / 1000.0,
        waits.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    assert_eq!(delivered + handed_over, customers, "replies were lost");
    assert_eq!(duplicates, 0);
    app.stop().await;
}
