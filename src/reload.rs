//! Live knowledge: the assistant being served, rebuilt when the owner edits the
//! knowledge folder.
//!
//! [`LiveAssistant`] holds the served [`Assistant`] behind a lock that readers
//! only take long enough to clone an `Arc` ([`LiveAssistant::current`]): a
//! message being answered keeps the index it started with, the next one gets
//! the new one. [`LiveAssistant::reload`] checks the folder and builds a new
//! index (blocking: it embeds the texts that changed; the embedding cache makes
//! everything else free), then swaps it in. A folder with errors swaps nothing:
//! the last good index keeps serving and the errors are kept for the owner to
//! see (FORMATS.md §1 "Errors").
//!
//! [`KnowledgeWatcher`] watches the folder (notify, recursive), waits for
//! [`DEBOUNCE`] of quiet after the last change (an editor's save is several
//! events), and reloads on its own thread, never on the async runtime. Every
//! reload attempt is announced on a broadcast channel
//! ([`LiveAssistant::subscribe`]) so `serve` can write a `knowledge` event.

use crate::assistant::Assistant;
use crate::index::cache::EmbeddingCache;
use crate::index::Index;
use crate::inference::Embedder;
use crate::knowledge::{KnowledgeBase, KnowledgeError, Severity};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Quiet time after the last file event before a reload starts.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// A folder that never stops changing is still reloaded this long after the
/// first change of a burst.
const MAX_DELAY: Duration = Duration::from_secs(2);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What `GET /api/knowledge` shows: the index being served and the outcome of
/// the last reload attempt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KnowledgeStatus {
    /// When the index being served was built (ms since the Unix epoch).
    pub loaded_ms: i64,
    /// Entries in the index being served.
    pub entries: usize,
    /// The errors of the last reload attempt, one `path:line: error: …` each;
    /// empty after a good reload.
    pub errors: Vec<String>,
    /// When the last reload attempt finished (`loaded_ms` before any attempt).
    pub checked_ms: i64,
}

/// One reload attempt, as announced to subscribers.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// A new index is being served.
    pub ok: bool,
    /// The status after the attempt.
    pub status: KnowledgeStatus,
    /// Texts embedded for this build (the rest came from the cache).
    pub embedded: usize,
    /// Check + build time.
    pub took: Duration,
    /// When the new index became the one served (when the attempt ended, for a
    /// failed one).
    pub finished: Instant,
}

/// The assistant being served, and how to rebuild it from the folder.
pub struct LiveAssistant {
    served: RwLock<Arc<Assistant>>,
    status: RwLock<KnowledgeStatus>,
    knowledge_dir: PathBuf,
    cache_dir: PathBuf,
    embedder: Arc<Embedder>,
    /// One reload at a time; keeps the embedding cache in memory between them
    /// (opened on the first reload).
    cache: Mutex<Option<EmbeddingCache>>,
    events: tokio::sync::broadcast::Sender<Reloaded>,
}

impl LiveAssistant {
    /// Serves `initial` (built from `knowledge_dir`); rebuilds use its embedder,
    /// generation policy and writer (each build calibrates its own thresholds).
    pub fn new(
        initial: Arc<Assistant>,
        knowledge_dir: impl Into<PathBuf>,
        cache_dir: impl Into<PathBuf>,
    ) -> LiveAssistant {
        let now = now_ms();
        let status = KnowledgeStatus {
            loaded_ms: now,
            entries: initial.index.knowledge.entries.len(),
            errors: Vec::new(),
            checked_ms: now,
        };
        let (events, _) = tokio::sync::broadcast::channel(16);
        LiveAssistant {
            embedder: initial.embedder().clone(),
            served: RwLock::new(initial),
            status: RwLock::new(status),
            knowledge_dir: knowledge_dir.into(),
            cache_dir: cache_dir.into(),
            cache: Mutex::new(None),
            events,
        }
    }

    /// The assistant to answer the next message with (a cheap `Arc` clone).
    pub fn current(&self) -> Arc<Assistant> {
        self.served
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn status(&self) -> KnowledgeStatus {
        self.status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn knowledge_dir(&self) -> &Path {
        &self.knowledge_dir
    }

    /// Every later reload attempt, good or failed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Reloaded> {
        self.events.subscribe()
    }

    /// Checks the folder and builds a new index; on success it becomes the one
    /// served, on failure the last good one keeps serving and the errors are
    /// recorded (and logged). Blocking: call it from a thread of its own or
    /// `spawn_blocking`.
    pub fn reload(&self) -> Reloaded {
        let started = Instant::now();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let built = self.rebuild(&mut cache);
        let took = started.elapsed();
        let finished_ms = now_ms();
        let (ok, embedded, finished) = match built {
            Ok((assistant, warnings)) => {
                let entries = assistant.index.knowledge.entries.len();
                let embedded = assistant.index.stats.embedded;
                {
                    let mut served = self
                        .served
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    *served = Arc::new(assistant);
                    let mut status = self
                        .status
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    *status = KnowledgeStatus {
                        loaded_ms: finished_ms,
                        entries,
                        errors: Vec::new(),
                        checked_ms: finished_ms,
                    };
                }
                let swapped = Instant::now();
                tracing::info!(
                    folder = %self.knowledge_dir.display(),
                    entries,
                    embedded,
                    warnings,
                    ms = took.as_millis() as u64,
                    "knowledge reloaded"
                );
                (true, embedded, swapped)
            }
            Err(errors) => {
                for error in &errors {
                    tracing::warn!(
                        folder = %self.knowledge_dir.display(),
                        error = %error,
                        "knowledge edit refused; the last good index keeps serving"
                    );
                }
                let mut status = self
                    .status
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                status.errors = errors;
                status.checked_ms = finished_ms;
                (false, 0, Instant::now())
            }
        };
        let reloaded = Reloaded {
            ok,
            status: self.status(),
            embedded,
            took,
            finished,
        };
        // Nobody listening is fine.
        let _ = self.events.send(reloaded.clone());
        reloaded
    }

    /// Check + index build; the errors one string per problem.
    fn rebuild(
        &self,
        cache: &mut Option<EmbeddingCache>,
    ) -> Result<(Assistant, usize), Vec<String>> {
        let knowledge =
            KnowledgeBase::load(&self.knowledge_dir).map_err(|e| knowledge_errors(&e))?;
        let warnings = knowledge.warnings.len();
        if cache.is_none() {
            let opened = EmbeddingCache::open(&self.cache_dir, &self.embedder.fingerprint)
                .map_err(|e| {
                    vec![format!(
                        "cannot open the embedding cache in {}: {e}",
                        self.cache_dir.display()
                    )]
                })?;
            *cache = Some(opened);
        }
        let slot = cache.as_mut().expect("opened above");
        let index = match Index::build(Arc::new(knowledge), &self.embedder, slot) {
            Ok(index) => index,
            Err(error) => {
                // Start from the file again next time rather than from a cache
                // whose pending records may not have been written.
                *cache = None;
                return Err(vec![error.to_string()]);
            }
        };
        let previous = self.current();
        let mut assistant = Assistant::new(index, self.embedder.clone());
        assistant.policy = previous.policy;
        assistant.writer = previous.writer.clone();
        Ok((assistant, warnings))
    }
}

/// One string per error of a refused folder, `path:line: error: message` as
/// the loader prints them (warnings are left out: they do not stop a reload).
pub fn knowledge_errors(error: &KnowledgeError) -> Vec<String> {
    let errors: Vec<String> = error
        .issues
        .iter()
        .filter(|issue| issue.severity == Severity::Error)
        .map(|issue| issue.to_string())
        .collect();
    if errors.is_empty() {
        vec![error.to_string()]
    } else {
        errors
    }
}

/// Whether a changed path can matter to the loader: editor swap, backup and
/// lock files (`.faq.md.swp`, `faq.md~`, `.#faq.md`, `#faq.md#`) and hidden
/// files never do.
pub fn is_relevant_path(path: &Path) -> bool {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
        return true;
    };
    let ignored = name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with(".tmp");
    if ignored {
        return false;
    }
    // What the loader reads, or a folder (which has no extension, usually).
    name.ends_with(".md") || name.ends_with(".toml") || !name.contains('.')
}

fn is_relevant(event: &notify::Event) -> bool {
    if matches!(event.kind, notify::EventKind::Access(_)) {
        return false;
    }
    // No paths: the backend lost track (a rescan); reload to be safe.
    event.paths.is_empty() || event.paths.iter().any(|p| is_relevant_path(p))
}

enum Signal {
    Changed,
    Stop,
}

/// Watches the knowledge folder and reloads after each burst of edits, on a
/// thread of its own. Stopped by [`KnowledgeWatcher::stop`] or on drop.
pub struct KnowledgeWatcher {
    signals: mpsc::Sender<Signal>,
    thread: Option<std::thread::JoinHandle<()>>,
    watcher: Option<notify::RecommendedWatcher>,
}

impl KnowledgeWatcher {
    pub fn start(live: Arc<LiveAssistant>) -> notify::Result<KnowledgeWatcher> {
        KnowledgeWatcher::start_with(live, DEBOUNCE)
    }

    /// `quiet`: how long no event must arrive before the reload starts.
    pub fn start_with(
        live: Arc<LiveAssistant>,
        quiet: Duration,
    ) -> notify::Result<KnowledgeWatcher> {
        use notify::Watcher as _;
        let (signals, received) = mpsc::channel();
        let from_events = signals.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    Ok(event) => is_relevant(event),
                    Err(error) => {
                        tracing::warn!(%error, "knowledge folder watch error; reloading");
                        true
                    }
                };
                if relevant {
                    let _ = from_events.send(Signal::Changed);
                }
            })?;
        watcher.watch(live.knowledge_dir(), notify::RecursiveMode::Recursive)?;
        let thread = std::thread::Builder::new()
            .name("knowledge-watch".into())
            .spawn(move || debounce_and_reload(&live, &received, quiet))
            .map_err(notify::Error::io)?;
        Ok(KnowledgeWatcher {
            signals,
            thread: Some(thread),
            watcher: Some(watcher),
        })
    }

    /// Stops watching and waits for a reload in progress to finish (blocking).
    pub fn stop(mut self) {
        self.shut_down();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn shut_down(&mut self) {
        // Dropping the notify watcher ends its thread and its file watches.
        self.watcher.take();
        let _ = self.signals.send(Signal::Stop);
    }
}

impl Drop for KnowledgeWatcher {
    fn drop(&mut self) {
        // Without waiting: the reload thread exits after the reload in hand.
        self.shut_down();
    }
}

fn debounce_and_reload(live: &LiveAssistant, signals: &mpsc::Receiver<Signal>, quiet: Duration) {
    loop {
        match signals.recv() {
            Ok(Signal::Changed) => {}
            Ok(Signal::Stop) | Err(_) => return,
        }
        let first = Instant::now();
        loop {
            let wait = quiet.min(MAX_DELAY.saturating_sub(first.elapsed()));
            if wait.is_zero() {
                break;
            }
            match signals.recv_timeout(wait) {
                Ok(Signal::Changed) => continue,
                Ok(Signal::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
            }
        }
        live.reload();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_temp_files_are_ignored() {
        for ignored in [
            "knowledge/.faq.md.swp",
            "knowledge/.faq.md.swx",
            "knowledge/faq.md~",
            "knowledge/.#faq.md",
            "knowledge/#faq.md#",
            "knowledge/policies/.delivery.md.swp",
            "knowledge/faq.md.tmp",
            "knowledge/notes.txt",
        ] {
            assert!(!is_relevant_path(Path::new(ignored)), "{ignored}");
        }
        for relevant in [
            "knowledge/faq.md",
            "knowledge/menu.toml",
            "knowledge/policies/delivery.md",
            "knowledge/policies",
        ] {
            assert!(is_relevant_path(Path::new(relevant)), "{relevant}");
        }
    }
}
