//! PostgreSQL restarted under load: while the database is down, webhooks are
//! answered 503 or not at all (the providers retry), never a 200 for a message that was not
//! committed; the workers reconnect by themselves, and afterwards every
//! message is stored once and answered once.
//!
//! It needs a database server it may stop, never a shared one: set
//! `FRONTDESK_OUTAGE_DATABASE_URL` (a server whose user may create databases)
//! and `FRONTDESK_OUTAGE_RESTART` (a shell command that stops it, waits and
//! starts it again). With a throwaway cluster, as root:
//! `pg_createcluster 15 fdtest --port 5440 -- --auth=trust && pg_ctlcluster 15 fdtest start`, then
//! `FRONTDESK_OUTAGE_DATABASE_URL=postgres://postgres@127.0.0.1:5440/postgres
//! FRONTDESK_OUTAGE_RESTART='pg_ctlcluster 15 fdtest stop -m fast && sleep 8 && pg_ctlcluster 15 fdtest start'
//! cargo test --release --test api db_outage -- --nocapture`.
//! Without them the test says so and passes without running.

use crate::serve_helpers::*;
use crate::serve_process::*;
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_under_load_answers_503_then_loses_nothing() {
    let (Ok(admin), Ok(restart)) = (
        std::env::var("FRONTDESK_OUTAGE_DATABASE_URL"),
        std::env::var("FRONTDESK_OUTAGE_RESTART"),
    ) else {
        eprintln!("FRONTDESK_OUTAGE_DATABASE_URL / FRONTDESK_OUTAGE_RESTART not set: skipping the database outage test");
        return;
    };
    sqlx::any::install_default_drivers();
    let database = format!("frontdesk_outage_{}", std::process::id());
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::Executor::execute(
        &mut connection,
        sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")),
    )
    .await
    .unwrap();
    drop(connection);
    let base = admin.rsplit_once('/').unwrap().0;
    let target = Target {
        data: crate::helpers::scratch("outage"),
        database_url: Some(format!("{base}/{database}")),
    };
    let messages = 1500;
    let (fake_base, fake) = start_fake_providers().await;
    let (mut child, port) = start_server(&target, &fake_base, 0);
    let load = Load::start(port, messages, 8);
    load.until_acknowledged(messages / 3).await;
    let restarted = std::process::Command::new("sh")
        .args(["-c", &restart])
        .status()
        .unwrap();
    assert!(restarted.success(), "the restart command failed");
    let acknowledged = load.acknowledged.clone();
    let unavailable = load.unavailable.clone();
    let refused = load.refused.clone();
    load.finish().await;
    let outcome = settle_and_count(&target, &fake, messages, 120).await;
    let still_serving = child.try_wait().unwrap().is_none();
    child.kill().ok();
    let _ = child.wait();
    println!(
        "database outage: acknowledged {}, refused {} (of which 503: {}), {outcome:?}",
        acknowledged.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
        unavailable.load(Ordering::SeqCst)
    );
    assert!(still_serving, "serve survives the database restart");
    // The server answers 503 once its pool gives up (5 s); a sender that
    // stops waiting first (5 s here, as providers do) sees no answer. Either
    // way it is not acknowledged and it retries.
    assert!(
        refused.load(Ordering::SeqCst) > 0,
        "webhooks during the outage are refused (503 or no answer), not acknowledged"
    );
    assert_eq!(
        outcome.stored, messages,
        "every acknowledged message is stored once"
    );
    assert_eq!(outcome.lost, 0);
    assert_eq!(outcome.duplicates, 0);
    // Passed: the database has nothing left to show, so it goes (a failed
    // run keeps it for a look).
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::Executor::execute(
        &mut connection,
        sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")),
    )
    .await
    .unwrap();
}
