//! Graceful shutdown under load: SIGTERM while webhooks arrive and replies go
//! out. The server stops accepting, answers the requests it holds (each after
//! its group commit), finishes or gives back the messages and sends in hand,
//! and exits 0 with no lease left held, so a restart takes up the rest at
//! once. After the restart every acknowledged message is answered exactly
//! once, and none is handed over as an interrupted send.

use crate::serve_helpers::*;
use crate::serve_process::*;
use std::time::{Duration, Instant};

async fn sigterm_run(target: Target) {
    let messages = 900;
    let (fake_base, fake) = start_fake_providers().await;
    let (mut child, port) = start_server(&target, &fake_base, 0);
    let load = Load::start(port, messages, 8);
    load.until_acknowledged(messages / 3).await;

    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
    let acknowledged_at_stop = load.acknowledged();
    assert!(
        acknowledged_at_stop < messages,
        "the load ended before the stop; nothing was tested"
    );
    let store = target.store().await;
    assert_eq!(
        store.leases_held().await.unwrap(),
        (0, 0),
        "a stopped server holds no lease (claimed answers, sends in flight)"
    );
    // Everything it acknowledged before stopping is stored.
    assert!(store.count_messages("in").await.unwrap() as usize >= acknowledged_at_stop);
    drop(store);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        load.refused.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "a stopped server accepts nothing (the senders are refused and retry)"
    );
    let (restarted, _) = start_server(&target, &fake_base, port);
    child = restarted;
    load.finish().await;
    let outcome = settle_and_count(&target, &fake, messages, 60).await;
    child.kill().ok();
    let _ = child.wait();
    println!("shutdown test ({}): {outcome:?}", target.label());
    assert_eq!(outcome.stored, messages);
    assert_eq!(outcome.answered, messages, "every message answered");
    assert_eq!(outcome.lost, 0);
    assert_eq!(outcome.duplicates, 0);
    assert_eq!(outcome.handed_over, 0, "a clean stop interrupts no send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_in_flight_work_and_exits_zero() {
    sigterm_run(Target {
        data: crate::helpers::scratch("sigterm"),
        database_url: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_on_postgres_leaves_no_lease() {
    let Some(url) = postgres_database("sigterm").await else {
        eprintln!("DATABASE_URL_TEST is not set: skipping the PostgreSQL shutdown test");
        return;
    };
    sigterm_run(Target {
        data: crate::helpers::scratch("sigterm-pg"),
        database_url: Some(url),
    })
    .await;
}
