//! Builds the whole answering stack from paths: knowledge folder → models →
//! index → assistant. Used by every command and by the tests.

use crate::assistant::Assistant;
use crate::index::cache::EmbeddingCache;
use crate::index::{Index, IndexError};
use crate::inference::{Embedder, ModelError};
use crate::knowledge::{KnowledgeBase, KnowledgeError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Knowledge(#[from] KnowledgeError),
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("{0}")]
    Index(#[from] IndexError),
    #[error("cannot open the embedding cache in {path}: {source}")]
    Cache {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Where things live on disk.
#[derive(Debug, Clone)]
pub struct Paths {
    pub knowledge: PathBuf,
    pub models: PathBuf,
    pub data: PathBuf,
}

impl Paths {
    pub fn cache_dir(&self) -> PathBuf {
        self.data.join("cache")
    }
}

/// Loads the embedder (fetching it on first use).
pub fn load_embedder(paths: &Paths) -> Result<Arc<Embedder>, StartupError> {
    Ok(Arc::new(crate::inference::load_embedder(&paths.models)?))
}

/// Loads the generator and wraps it with the verifier.
pub fn load_writer(
    paths: &Paths,
    embedder: Arc<Embedder>,
) -> Result<crate::assistant::generate::GroundedWriter, StartupError> {
    let generator = crate::inference::load_generator(&paths.models)?;
    Ok(crate::assistant::generate::GroundedWriter::new(
        Arc::new(generator),
        embedder,
    ))
}

/// Loads a knowledge folder and indexes it with `embedder`.
pub fn build_assistant(
    knowledge_dir: &Path,
    cache_dir: &Path,
    embedder: Arc<Embedder>,
) -> Result<Assistant, StartupError> {
    let knowledge = Arc::new(KnowledgeBase::load(knowledge_dir)?);
    let mut cache = EmbeddingCache::open(cache_dir, &embedder.fingerprint).map_err(|source| {
        StartupError::Cache {
            path: cache_dir.display().to_string(),
            source,
        }
    })?;
    let index = Index::build(knowledge, &embedder, &mut cache)?;
    Ok(Assistant::new(index, embedder))
}

/// The running service: store, models, HTTP listener and workers, built from
/// settings. `serve` and the integration tests both start it this way.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: crate::http::AppState,
    /// Sent `true` when the service stops; `state.shutdown` is its receiver.
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Application {
    /// Connects the store, loads models and knowledge (unless an assistant is
    /// given, as tests do to share one), and binds the listener (port 0 picks one).
    pub async fn build(
        settings: crate::config::Settings,
        assistant: Option<Arc<Assistant>>,
    ) -> Result<Application, StartupError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| StartupError::Io { what, source }
        };
        std::fs::create_dir_all(&settings.data_dir).map_err(io("creating the data dir"))?;
        let store =
            crate::store::Store::connect_with(&settings.database(), settings.store.durability)
                .await?;
        // A restarted single-process SQLite service knows that every lease in
        // its file belonged to its own dead predecessor.
        store.release_stale_leases().await?;
        let assistant = match assistant {
            Some(assistant) => assistant,
            None => {
                let paths = Paths {
                    knowledge: settings.knowledge.clone(),
                    models: settings.models.clone(),
                    data: settings.data_dir.clone(),
                };
                let built =
                    tokio::task::spawn_blocking(move || -> Result<Assistant, StartupError> {
                        let embedder = load_embedder(&paths)?;
                        build_assistant(&paths.knowledge, &paths.cache_dir(), embedder)
                    })
                    .await
                    .map_err(|e| StartupError::Io {
                        what: "loading models".into(),
                        source: std::io::Error::other(e.to_string()),
                    })??;
                Arc::new(built)
            }
        };
        // Served live: the watcher started by `run_until` reloads it on edits.
        let assistant = Arc::new(crate::reload::LiveAssistant::new(
            assistant,
            settings.knowledge.clone(),
            settings.data_dir.join("cache"),
        ));
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .map_err(io(&format!("binding {}", settings.listen)))?;
        let bound = listener
            .local_addr()
            .map_err(io("reading the bound address"))?;
        let public_base = settings.public_base(&bound.to_string());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        // Per-sender token buckets and the webhook budget (`[limits]`).
        let limiter = Arc::new(crate::http::SenderLimiter::new(
            f64::from(settings.limits.sender_burst.max(1)),
            f64::from(settings.limits.sender_per_minute) / 60.0,
        ));
        let webhook_slots = Arc::new(tokio::sync::Semaphore::new(
            settings.limits.inflight_webhooks.max(1),
        ));
        let webhook_bytes = Arc::new(crate::http::shed::BodyBudget::new(
            settings.limits.inflight_body_mb,
            crate::http::MAX_BODY_BYTES.max(crate::http::upload_body_limit(
                settings.attachments.max_bytes,
            )),
        ));
        let state = crate::http::AppState {
            ingest: crate::store::IngestWriter::start(store.clone()),
            store,
            assistant,
            settings: Arc::new(settings),
            metrics: Arc::new(crate::http::metrics::Metrics::default()),
            new_work: Arc::new(tokio::sync::Notify::new()),
            new_reply: Arc::new(tokio::sync::Notify::new()),
            public_base,
            limiter,
            webhook_slots,
            webhook_bytes,
            chat_hub: Arc::new(crate::http::webchat::ChatHub::new(
                crate::http::webchat::WebchatConfig::from_env(),
            )),
            // Five attempts, then one a minute.
            login_limiter: Arc::new(crate::http::SenderLimiter::new(5.0, 1.0 / 60.0)),
            shutdown: stopped,
        };
        Ok(Application {
            listener,
            state,
            stop: Arc::new(stop),
        })
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> crate::http::AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then lets the workers finish the
    /// message in hand before returning. The knowledge folder is watched
    /// meanwhile and reloaded live after each edit.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = self.stop.clone();
        let stopped = self.state.shutdown.clone();
        if let Ok(Some(link)) =
            crate::http::auth::setup_link(&self.state.store, &self.state.public_base).await
        {
            tracing::warn!(
                "no owner password is set: open {link} to choose one (or run `frontdesk set-password`); the inbox stays closed until then"
            );
        }
        let mut workers = Vec::new();
        // workers = 0 makes an ingest-only replica (another process answers).
        for n in 0..self.state.settings.workers {
            let worker = format!("{}-{}-{n}", std::process::id(), crate::store::new_id());
            workers.push(tokio::spawn(crate::pipeline::run_answer_worker(
                self.state.clone(),
                worker,
                stopped.clone(),
            )));
        }
        workers.push(tokio::spawn(crate::delivery::run_delivery_worker(
            self.state.clone(),
            stopped.clone(),
        )));
        workers.push(tokio::spawn(crate::alerts::run_alert_worker(
            self.state.clone(),
            stopped.clone(),
        )));
        // Live knowledge: a failed watch leaves the index loaded at start serving.
        let watcher = match crate::reload::KnowledgeWatcher::start(self.state.assistant.clone()) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(
                    folder = %self.state.settings.knowledge.display(),
                    %error,
                    "cannot watch the knowledge folder; edits need a restart"
                );
                None
            }
        };
        workers.push(tokio::spawn(housekeeping(
            self.state.clone(),
            stopped.clone(),
        )));
        workers.push(tokio::spawn(crate::privacy::run_retention_worker(
            self.state.clone(),
            stopped.clone(),
        )));
        workers.push(tokio::spawn(announce_reloads(
            self.state.clone(),
            stopped.clone(),
        )));
        let router = crate::http::app(self.state.clone());
        // Stop the workers and end the event streams as soon as shutdown
        // starts: the graceful shutdown waits for open responses to finish.
        let signal = {
            let stop = stop.clone();
            async move {
                shutdown.await;
                let _ = stop.send(true);
            }
        };
        let served = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .await;
        let _ = stop.send(true);
        if let Some(watcher) = watcher {
            // Waits for a reload in hand, off the runtime.
            let _ = tokio::task::spawn_blocking(move || watcher.stop()).await;
        }
        for worker in workers {
            let _ = worker.await;
        }
        served
    }
}

/// Tells the inbox about every reload attempt (good or refused) through the
/// store's event log, so every replica's `/api/events` streams it.
async fn announce_reloads(
    state: crate::http::AppState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut reloads = state.assistant.subscribe();
    loop {
        tokio::select! {
            reloaded = reloads.recv() => match reloaded {
                // Lagged: several attempts were missed; one event says "re-read".
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    if let Err(error) = state.store.record_event("knowledge", None).await {
                        tracing::warn!(%error, "cannot record the knowledge event");
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = stopped.changed() => return,
        }
    }
}

/// How long the event log keeps events: long enough for any browser to resume.
const EVENT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// Trims the event log now and then (every replica may; deletes are idempotent).
async fn housekeeping(
    state: crate::http::AppState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match state
            .store
            .prune_events(crate::store::now_ms() - EVENT_RETENTION_MS)
            .await
        {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old events pruned"),
            Err(error) => tracing::warn!(%error, "pruning events failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
            _ = stopped.changed() => return,
        }
    }
}
