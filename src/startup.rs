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
        let store = crate::store::Store::connect(&settings.database()).await?;
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
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .map_err(io(&format!("binding {}", settings.listen)))?;
        let bound = listener
            .local_addr()
            .map_err(io("reading the bound address"))?;
        let public_base = settings.public_base(&bound.to_string());
        let state = crate::http::AppState {
            store,
            assistant,
            settings: Arc::new(settings),
            metrics: Arc::new(crate::http::metrics::Metrics::default()),
            new_work: Arc::new(tokio::sync::Notify::new()),
            new_reply: Arc::new(tokio::sync::Notify::new()),
            public_base,
            limiter: Arc::new(crate::http::SenderLimiter::new(20.0, 1.0)),
            chat_hub: Arc::new(crate::http::webchat::ChatHub::new(
                crate::http::webchat::WebchatConfig::from_env(),
            )),
        };
        Ok(Application { listener, state })
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
    /// message in hand before returning.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
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
        let router = crate::http::app(self.state.clone());
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        served
    }
}
