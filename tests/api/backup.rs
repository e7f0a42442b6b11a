//! `frontdesk backup` while `serve` answers, and `frontdesk restore` into a
//! fresh data dir: every message of the copy comes back.

use crate::helpers::*;
use crate::serve_helpers::*;
use std::process::{Command, Output};

fn run(data_dir: &std::path::Path, listen: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(repo())
        .env("FRONTDESK_DATA_DIR", data_dir)
        .env("FRONTDESK_LISTEN", listen)
        .env_remove("DATABASE_URL")
        .args(args)
        .output()
        .expect("the frontdesk binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_every_message() {
    let app = spawn_app("backup-live", None, None).await;
    for i in 0..5 {
        let body = whatsapp_payload(
            "15557770000",
            &format!("wamid.BACKUP{i}"),
            "are you open sunday?",
        );
        let response = app.post_whatsapp(&body, Some(sign(&body))).await;
        assert_eq!(response.status(), 200);
    }
    let store = app.state.store.clone();
    let mut stored = 0;
    for _ in 0..100 {
        stored = store.message_count().await.unwrap();
        if stored >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stored >= 10, "5 messages and 5 replies: {stored}");

    let data_dir = app.state.settings.data_dir.clone();
    let listen = app.base.trim_start_matches("http://").to_string();
    let copy = scratch("backup-copy").join("copy");
    let copy_arg = copy.to_str().unwrap().to_string();
    let output = tokio::task::spawn_blocking({
        let (data_dir, listen, copy_arg) = (data_dir.clone(), listen.clone(), copy_arg.clone());
        move || run(&data_dir, &listen, &["backup", &copy_arg])
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stdout(&output);
    let backed_up: i64 = said
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(backed_up >= 10, "{said}");

    // A second backup into the same folder is refused: nothing is overwritten.
    let again = run(&data_dir, &listen, &["backup", &copy_arg]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));

    // Restoring while something serves on the address is refused.
    let fresh = scratch("backup-restore");
    let refused = run(&fresh, &listen, &["restore", &copy_arg]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("stop `frontdesk serve`"),
        "{}",
        stderr(&refused)
    );
    app.stop().await;

    let restored = run(&fresh, &listen, &["restore", &copy_arg]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    let back = frontdesk::store::Store::connect(&frontdesk::store::Store::sqlite_url(&fresh))
        .await
        .unwrap();
    assert_eq!(back.message_count().await.unwrap(), backed_up);
}

#[test]
fn postgres_backups_point_to_pg_dump() {
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(repo())
        .env("FRONTDESK_DATA_DIR", scratch("backup-pg"))
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
        .args(["backup", "/nonexistent/never-written"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
}
