//! `frontdesk bench reload`: edit-to-live time of the knowledge folder (the
//! watcher, debounce, check, index build and swap) on a scratch copy.

use super::percentile;
use crate::domain::Channel;
use crate::startup::{self, Paths, StartupError};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Copies a folder recursively (a scratch copy the benchmark can edit).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The edit-to-live target of the owner's inbox (docs/inbox.md).
const RELOAD_TARGET_MS: f64 = 2000.0;

/// One edit the reload benchmark makes: (what, file, new text).
fn reload_edit(original: &dyn Fn(&str) -> String, n: usize) -> (String, String) {
    match n % 3 {
        0 => {
            let faq = original("faq.md");
            (
                "faq.md".into(),
                faq.replacen(
                    "\n## ",
                    &format!(
                        "\n## Do you sell pink unicorn balloons?\nAlso asked: unicorn balloons | balloons for a party (edit {n})\n\nYes, pink unicorn balloons are at the counter, $4 each (edit {n}).\n\n## "
                    ),
                    1,
                ),
            )
        }
        1 => (
            "menu.toml".into(),
            original("menu.toml").replacen(
                "\"6-inch\" = 28.00",
                &format!("\"6-inch\" = 28.{:02}", n % 100),
                1,
            ),
        ),
        _ => (
            "policies/delivery.md".into(),
            original("policies/delivery.md").replacen(
                "and we don't ship by mail.",
                &format!("and we don't ship by mail (edit {n})."),
                1,
            ),
        ),
    }
}

/// `frontdesk bench reload`: from writing a file in the knowledge folder to the
/// new index being served, through the real watcher (debounce included), on a
/// scratch copy of the folder with a warm copy of the embedding cache.
pub fn reload(paths: &Paths, edits: usize) -> Result<(), StartupError> {
    use crate::reload::{KnowledgeWatcher, LiveAssistant, Reloaded, DEBOUNCE};
    let io = |what: String| move |source| StartupError::Io { what, source };
    let scratch =
        std::env::temp_dir().join(format!("frontdesk-bench-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let knowledge = scratch.join("knowledge");
    let cache_dir = scratch.join("cache");
    copy_dir(&paths.knowledge, &knowledge)
        .map_err(io(format!("copying {}", paths.knowledge.display())))?;
    if paths.cache_dir().is_dir() {
        copy_dir(&paths.cache_dir(), &cache_dir)
            .map_err(io(format!("copying {}", paths.cache_dir().display())))?;
    }
    let originals: std::collections::HashMap<String, String> =
        ["faq.md", "menu.toml", "policies/delivery.md"]
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    std::fs::read_to_string(knowledge.join(f)).unwrap_or_default(),
                )
            })
            .collect();
    let original = |file: &str| originals.get(file).cloned().unwrap_or_default();

    let embedder = startup::load_embedder(paths)?;
    let started = Instant::now();
    let initial = startup::build_assistant(&knowledge, &cache_dir, embedder)?;
    println!(
        "initial build: {:.2} s ({} entries, {} vectors, {} embedded now)",
        started.elapsed().as_secs_f64(),
        initial.index.stats.entries,
        initial.index.stats.vectors,
        initial.index.stats.embedded
    );
    let live = Arc::new(LiveAssistant::new(
        Arc::new(initial),
        &knowledge,
        &cache_dir,
    ));
    let mut events = live.subscribe();
    let watcher = KnowledgeWatcher::start(live.clone()).map_err(|e| StartupError::Io {
        what: format!("watching {}", knowledge.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    // Waits for the reload announced after `written`.
    let mut wait_for_reload = |written: Instant| -> Option<Reloaded> {
        let deadline = written + std::time::Duration::from_secs(30);
        while Instant::now() < deadline {
            match events.try_recv() {
                Ok(reloaded) if reloaded.finished >= written => return Some(reloaded),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::TryRecvError::Closed) => return None,
            }
        }
        None
    };

    println!(
        "\n{edits} edits, debounce {} ms (write → watcher → check + build → swap)\n",
        DEBOUNCE.as_millis()
    );
    println!("| edit | file | write → live ms | check + build ms | embedded | answer |");
    println!("|---|---|---|---|---|---|");
    let mut totals = Vec::new();
    let mut builds = Vec::new();
    for n in 0..edits {
        let (file, text) = reload_edit(&original, n);
        let written = Instant::now();
        std::fs::write(knowledge.join(&file), text).map_err(io(format!("writing {file}")))?;
        let Some(reloaded) = wait_for_reload(written) else {
            println!("| {n} | {file} | no reload within 30 s | | | |");
            continue;
        };
        let total = reloaded.finished.duration_since(written).as_secs_f64() * 1000.0;
        let build = reloaded.took.as_secs_f64() * 1000.0;
        let answer = if file == "faq.md" {
            let outcome =
                live.current()
                    .ask("do you sell pink unicorn balloons?", Channel::Webchat, &[])?;
            match outcome.decision.sources.first() {
                Some(s) if s.as_str() == "faq.md#do-you-sell-pink-unicorn-balloons" => {
                    "new entry".to_string()
                }
                other => format!("MISSED ({other:?})"),
            }
        } else {
            String::new()
        };
        println!(
            "| {n} | {file} | {total:.0} | {build:.0} | {} | {answer} |",
            reloaded.embedded
        );
        if !reloaded.ok {
            println!("  refused: {:?}", reloaded.status.errors);
        }
        totals.push(total);
        builds.push(build);
        // Apart from the next edit, so each is its own burst.
        std::thread::sleep(DEBOUNCE * 2);
    }

    // A broken edit and its fix.
    let written = Instant::now();
    std::fs::write(
        knowledge.join("menu.toml"),
        original("menu.toml").replacen("[[item]]", "[[item]\n", 1),
    )
    .map_err(io("writing menu.toml".into()))?;
    let broken = wait_for_reload(written);
    std::thread::sleep(DEBOUNCE * 2);
    let written_fix = Instant::now();
    std::fs::write(knowledge.join("menu.toml"), original("menu.toml"))
        .map_err(io("writing menu.toml".into()))?;
    let fixed = wait_for_reload(written_fix);
    watcher.stop();

    let max = totals.iter().cloned().fold(0.0, f64::max);
    let p50 = percentile(&mut totals, 50.0);
    let build_p50 = percentile(&mut builds, 50.0);
    println!(
        "\nwrite → live over {} edits: p50 {p50:.0} ms, max {max:.0} ms (check + build p50 {build_p50:.0} ms); \
         target {RELOAD_TARGET_MS:.0} ms: p50 {:.2}x, max {:.2}x of it",
        totals.len(),
        p50 / RELOAD_TARGET_MS,
        max / RELOAD_TARGET_MS
    );
    match broken {
        Some(r) => println!(
            "broken menu.toml: refused in {:.0} ms, still serving {} entries, errors: {:?}",
            r.finished.duration_since(written).as_secs_f64() * 1000.0,
            r.status.entries,
            r.status.errors
        ),
        None => println!("broken menu.toml: no reload attempt seen"),
    }
    match fixed {
        Some(r) => println!(
            "fixed menu.toml: live in {:.0} ms, errors now {}",
            r.finished.duration_since(written_fix).as_secs_f64() * 1000.0,
            r.status.errors.len()
        ),
        None => println!("fixed menu.toml: no reload attempt seen"),
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
