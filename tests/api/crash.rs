//! The crash test: signed WhatsApp webhooks are posted while the real `serve`
//! process is killed with SIGKILL and restarted several times, on SQLite and
//! (with `DATABASE_URL_TEST`) on PostgreSQL. Each kill lands while requests
//! wait on a group commit (the report counts them). Afterwards every
//! acknowledged message must be stored once and either answered exactly once
//! or, when the kill cut off its reply's send, handed to a person
//! (`delivery_unknown`): lost 0, duplicates 0. Handed-over replies are counted
//! apart, split by whether the reply had reached the provider.
//!
//! Short by default (CI). The long run (BENCHMARKS.md, "Crash test"):
//! FRONTDESK_CRASH_MESSAGES=20000 FRONTDESK_CRASH_KILLS=10 cargo test --release --test api crash -- --nocapture

use crate::serve_helpers::*;
use crate::serve_process::*;
use std::sync::atomic::Ordering;
use std::time::Instant;

async fn crash_run(target: Target) {
    let messages = env_number("FRONTDESK_CRASH_MESSAGES", 2000);
    let kills = env_number("FRONTDESK_CRASH_KILLS", 3);
    let (fake_base, fake) = start_fake_providers().await;
    let (mut child, port) = start_server(&target, &fake_base, 0);
    let started = Instant::now();
    let load = Load::start(port, messages, 8);

    // The killer: SIGKILL at intervals while messages are still arriving, then
    // restart on the same port and store.
    let mut in_flight_at_kills = Vec::new();
    for kill in 0..kills {
        load.until_acknowledged(messages * (kill + 1) / (kills + 1))
            .await;
        in_flight_at_kills.push(load.in_flight.load(Ordering::SeqCst));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        child = start_server(&target, &fake_base, port).0;
    }
    let acknowledged = load.acknowledged.clone();
    load.finish().await;
    let ingest_seconds = started.elapsed().as_secs_f64();

    // PostgreSQL keeps a killed replica's leases until they expire (30 s for
    // an answer, 60 s for a send): other replicas may be alive. So up to
    // 90 s may pass without progress.
    let outcome = settle_and_count(&target, &fake, messages, 90).await;
    child.kill().ok();
    let _ = child.wait();
    println!(
        "crash test ({}): {messages} messages, {kills} SIGKILLs (requests waiting on a commit at each: {in_flight_at_kills:?}), acknowledged {}, stored {}, answered {}, handed to a person {} (of which the reply never reached the provider: {}), lost {}, duplicate replies {}, ingest {ingest_seconds:.1}s, total {:.1}s",
        target.label(),
        acknowledged.load(Ordering::SeqCst),
        outcome.stored,
        outcome.answered,
        outcome.handed_over,
        outcome.handed_over_unsent,
        outcome.lost,
        outcome.duplicates,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(acknowledged.load(Ordering::SeqCst), messages);
    assert_eq!(
        outcome.stored, messages,
        "every acknowledged message is stored exactly once"
    );
    assert_eq!(
        outcome.lost, 0,
        "acknowledged messages neither answered nor handed over"
    );
    assert_eq!(outcome.duplicates, 0, "duplicate replies");
    assert!(
        // The server runs the default FRONTDESK_DELIVERY_CONCURRENCY of 8 sends at once.
        outcome.handed_over <= kills * 8,
        "at most 8 sends are in flight per kill"
    );
    assert!(
        in_flight_at_kills.iter().any(|&n| n > 0),
        "no kill landed while requests waited on a commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_load_loses_nothing_and_answers_each_message_once() {
    let target = Target {
        data: crate::helpers::scratch("crash"),
        database_url: None,
    };
    crash_run(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_load_loses_nothing_on_postgres() {
    let Some(url) = postgres_database("crash").await else {
        eprintln!("DATABASE_URL_TEST is not set: skipping the PostgreSQL crash test");
        return;
    };
    let target = Target {
        data: crate::helpers::scratch("crash-pg"),
        database_url: Some(url),
    };
    crash_run(target).await;
}
