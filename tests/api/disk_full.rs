//! A full disk under the store, for real: a small tmpfs (mounting needs root,
//! which CI has) holds the SQLite data dir, or the tablespace of a PostgreSQL
//! database, and a filler file takes every free byte. While the disk is full
//! webhooks must be answered 503 (with `Retry-After`), never 200 for a message
//! that was not written; once the filler is gone the same process takes
//! webhooks again, and every acknowledged message is stored and answered.
//! Without root the tests say so loudly and return; with root a mount that
//! fails is a failure.
//!
//! A full disk under PostgreSQL's WAL is another fault: PostgreSQL cannot
//! commit anything, stops itself (PANIC, then "shutting down due to startup
//! process failure") and must be started again once there is room. That is
//! a database outage: the test checks that `serve` answers 503 meanwhile and
//! loses nothing once an operator has started the server again.

use crate::serve_helpers::*;
use crate::serve_process::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs at {}", path.display());
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes zeros until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let zeros = vec![0u8; chunk];
        while file.write_all(&zeros).is_ok() {
            written += chunk as u64;
        }
    }
    let _ = file.sync_all();
    written
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// One signed post of customer `n`'s message; the status, or 0 for no answer.
async fn post(client: &reqwest::Client, url: &str, n: usize) -> (u16, bool) {
    let body = whatsapp_payload(
        &customer(n),
        &format!("wamid.full.{n}"),
        "what time do you open on saturday?",
    );
    match client
        .post(url)
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", sign(&body))
        .body(body)
        .send()
        .await
    {
        Ok(response) => (
            response.status().as_u16(),
            response.headers().contains_key("retry-after"),
        ),
        Err(_) => (0, false),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_data_disk_answers_503_and_recovers_without_a_restart() {
    if !is_root() {
        eprintln!("NOT RUN: the disk-full test mounts a tmpfs and needs root (CI runs as root)");
        return;
    }
    let data = crate::helpers::scratch("disk-full").join("data");
    let _mount = Tmpfs::mount(&data, "64m");
    let target = Target {
        data: data.clone(),
        database_url: None,
    };
    full_disk_round(&target, &data.join("filler"), &|| {}).await;
}

/// Runs `sql` with psql against `url`, stopping at the first error; whether it succeeded.
fn psql(url: &str, sql: &str) -> bool {
    Command::new("psql")
        .args(["-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .stdout(std::process::Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// A PostgreSQL database whose tablespace is a tmpfs of its own, dropped
/// (database, then tablespace) before the tmpfs is unmounted.
struct TablespaceDatabase {
    admin: String,
    name: String,
}

impl TablespaceDatabase {
    fn psql(&self, sql: &str) -> bool {
        psql(&self.admin, sql)
    }
}

impl Drop for TablespaceDatabase {
    fn drop(&mut self) {
        self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        self.psql(&format!("DROP TABLESPACE IF EXISTS {}", self.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_on_a_full_disk_answers_503_and_recovers_without_a_restart() {
    let Ok(admin) = std::env::var("DATABASE_URL_TEST") else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    if !is_root() {
        eprintln!("NOT RUN: the disk-full test mounts a tmpfs and needs root (CI runs as root)");
        return;
    }
    // The server runs as its own user: the tablespace lives where it can
    // reach it, on a tmpfs it owns. The WAL stays on the server's own disk,
    // so this fills the disk under the tables and indexes, which is what a
    // full tablespace does to a shop's database.
    let name = format!("frontdesk_full_{}", std::process::id());
    let space = PathBuf::from(format!("/tmp/{name}"));
    let _mount = Tmpfs::mount(&space, "48m");
    let owner = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(&space)
        .status()
        .expect("chown runs");
    assert!(
        owner.success(),
        "the tablespace directory is given to postgres"
    );
    let database = TablespaceDatabase {
        admin: admin.clone(),
        name: name.clone(),
    };
    assert!(
        database.psql(&format!(
            "CREATE TABLESPACE {name} LOCATION '{}'",
            space.display()
        )),
        "creating a tablespace on the tmpfs"
    );
    assert!(
        database.psql(&format!("CREATE DATABASE {name} TABLESPACE {name}")),
        "creating a database in it"
    );
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base.to_string())
        .unwrap_or(admin.clone());
    let target = Target {
        data: crate::helpers::scratch("disk-full-pg").join("data"),
        database_url: Some(format!("{base}/{name}")),
    };
    full_disk_round(&target, &space.join("filler"), &|| {}).await;
    drop(database);
}

/// Ten messages with room, then the disk filled by `filler`, messages until
/// five in a row are refused, the filler removed (then `on_room`: what an
/// operator does once there is room), every refused message retried as a
/// provider would, and the whole count checked.
async fn full_disk_round(target: &Target, filler: &Path, on_room: &dyn Fn()) {
    let label = target.label();
    let (fake_base, fake) = start_fake_providers().await;
    let (mut child, port) = start_server(target, &fake_base, 0);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/webhooks/whatsapp");

    // Before: room on the disk, messages taken.
    let before = 10;
    for n in 0..before {
        assert_eq!(
            post(&client, &url, n).await.0,
            200,
            "with room, message {n} is taken"
        );
    }

    // Full: every free byte taken. SQLite may still reuse room its WAL holds,
    // and PostgreSQL room left in its pages, so some messages can be taken;
    // once the store needs a new page it must refuse. PostgreSQL's WAL can
    // take a few hundred messages into the segment it is writing.
    let filled = fill(filler);
    let mut refused = Vec::new();
    let mut acknowledged_while_full = 0;
    let mut consecutive_503 = 0;
    let mut refusals_without_retry_after = 0;
    let mut next = before;
    while consecutive_503 < 5 && next < before + 3000 {
        let (status, has_retry_after) = post(&client, &url, next).await;
        match status {
            200 => {
                acknowledged_while_full += 1;
                consecutive_503 = 0;
            }
            503 => {
                consecutive_503 += 1;
                refused.push(next);
                if !has_retry_after {
                    refusals_without_retry_after += 1;
                }
            }
            other => {
                consecutive_503 = 0;
                refused.push(next);
                println!("message {next} while full: status {other}");
            }
        }
        next += 1;
    }
    let still_serving_while_full = child.try_wait().unwrap().is_none();

    // Room again: no restart, the refused messages are retried (as providers
    // do) and new ones are taken.
    std::fs::remove_file(filler).unwrap();
    on_room();
    let mut retries_needed = 0;
    let after_start = next;
    let retry: Vec<usize> = refused
        .iter()
        .copied()
        .chain(after_start..after_start + 5)
        .collect();
    for &n in &retry {
        let mut taken = false;
        for _attempt in 0..300 {
            if post(&client, &url, n).await.0 == 200 {
                taken = true;
                break;
            }
            retries_needed += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(taken, "message {n} is taken once the disk has room again");
    }
    let messages = after_start + 5;
    let outcome = settle_and_count(target, &fake, messages, 120).await;
    let still_serving = child.try_wait().unwrap().is_none();
    child.kill().ok();
    let _ = child.wait();
    println!(
        "disk full ({label}): filler {filled} bytes; while full {acknowledged_while_full} taken, {} refused (503 in a row at the end: {consecutive_503}); {retries_needed} retries after room came back; {outcome:?}",
        refused.len()
    );
    assert!(still_serving_while_full, "serve survives a full disk");
    assert_eq!(consecutive_503, 5, "a full disk answers 503, not 200");
    assert_eq!(
        refusals_without_retry_after, 0,
        "every 503 says when to retry"
    );
    assert!(still_serving, "the same process recovers");
    assert_eq!(
        outcome.stored, messages,
        "every acknowledged message is stored once"
    );
    assert_eq!(
        outcome.lost, 0,
        "an acknowledged message left without a reply"
    );
    assert_eq!(outcome.duplicates, 0, "duplicate replies");
}

/// A PostgreSQL server of the test's own (`initdb` and `pg_ctl`, run as
/// `postgres`) whose WAL directory is a small tmpfs with 1 MB segments, on a
/// free port. Stopped, unmounted and removed when dropped.
struct WalOnTmpfs {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    mount: Option<Tmpfs>,
}

impl WalOnTmpfs {
    /// The newest installed server's programs (Debian's layout), if any.
    fn server_bin() -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    }

    fn as_postgres(&self, program: &str, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false)
    }

    fn create(bin: PathBuf) -> WalOnTmpfs {
        let root = PathBuf::from(format!("/tmp/frontdesk_wal_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let wal = root.join("wal");
        let mount = Tmpfs::mount(&wal, "24m");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let owner = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&root)
            .status()
            .expect("chown runs");
        assert!(owner.success(), "the cluster's directories go to postgres");
        let cluster = WalOnTmpfs {
            bin,
            root,
            port,
            mount: Some(mount),
        };
        let data = cluster.root.join("data");
        let waldir = wal.join("pg_wal");
        assert!(
            cluster.as_postgres(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "--waldir",
                    waldir.to_str().unwrap(),
                    "--wal-segsize=1",
                    "--auth=trust",
                    "-U",
                    "postgres",
                ],
            ),
            "initdb with the WAL on the tmpfs"
        );
        assert!(cluster.start(), "the test's PostgreSQL starts");
        cluster
    }

    /// `pg_ctl start`, waiting until it takes connections (crash recovery
    /// included); false when it does not come up.
    fn start(&self) -> bool {
        // wal_recycle=off: a checkpoint removes old segments rather than
        // renaming them into future ones, so a full disk is met at the next
        // segment, not several megabytes later.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c wal_recycle=off",
            self.port,
            self.root.display()
        );
        let log = self.root.join("server.log");
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.root.join("data").to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-t",
                "60",
                "-w",
                "start",
            ],
        )
    }

    fn is_running(&self) -> bool {
        self.as_postgres(
            "pg_ctl",
            &["-D", self.root.join("data").to_str().unwrap(), "status"],
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn psql(&self, sql: &str) -> bool {
        psql(&self.url(), sql)
    }

    /// Moves the WAL past every segment file initdb left ahead of it and
    /// checkpoints them away, so the only room left is the rest of the
    /// segment being written.
    fn use_up_spare_segments(&self) {
        assert!(self.psql("CREATE TABLE wal_switch (n int)"));
        for _ in 0..16 {
            assert!(self.psql("INSERT INTO wal_switch VALUES (1); SELECT pg_switch_wal()"));
        }
        assert!(self.psql("CHECKPOINT"));
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }
}

impl Drop for WalOnTmpfs {
    fn drop(&mut self) {
        let data = self.root.join("data");
        self.as_postgres(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        drop(self.mount.take());
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_with_a_full_wal_disk_answers_503_and_loses_nothing_once_restarted() {
    if !is_root() {
        eprintln!(
            "NOT RUN: the WAL disk-full test mounts a tmpfs and needs root (CI runs as root)"
        );
        return;
    }
    let Some(bin) = WalOnTmpfs::server_bin() else {
        eprintln!("NOT RUN: no PostgreSQL server programs under /usr/lib/postgresql (CI has them)");
        return;
    };
    let cluster = WalOnTmpfs::create(bin);
    cluster.use_up_spare_segments();
    let target = Target {
        data: crate::helpers::scratch("disk-full-wal").join("data"),
        database_url: Some(cluster.url()),
    };
    let stopped_itself = std::sync::atomic::AtomicBool::new(false);
    let restart = || {
        // PostgreSQL stopped itself when it could not write its WAL; an
        // operator frees room and starts it again.
        let stopped = !cluster.is_running();
        stopped_itself.store(stopped, std::sync::atomic::Ordering::SeqCst);
        println!("PostgreSQL's log at the full disk:\n{}", cluster.log_tail());
        if stopped {
            assert!(
                cluster.start(),
                "PostgreSQL starts again once its WAL has room"
            );
        }
    };
    full_disk_round(
        &target,
        &cluster.mount.as_ref().unwrap().0.join("filler"),
        &restart,
    )
    .await;
    assert!(
        stopped_itself.load(std::sync::atomic::Ordering::SeqCst),
        "the full WAL disk stopped PostgreSQL (else this test tested nothing new)"
    );
}
