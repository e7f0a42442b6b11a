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
