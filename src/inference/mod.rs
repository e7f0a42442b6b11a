//! The local models: the manifest and fetching ([`models`]), sentence embeddings
//! ([`embedder`]) and, later, the generator.
//!
//! No tokio or axum types in here: everything is blocking and is called from
//! worker threads by the async parts.

pub mod embedder;
pub mod models;

pub use embedder::Embedder;
pub use models::{ModelError, ModelStore};

use std::path::Path;

/// Resolves (fetching if needed) and loads the embedding model.
pub fn load_embedder(models_dir: &Path) -> Result<Embedder, ModelError> {
    let store = ModelStore::open(models_dir)?;
    let spec = store.spec_for_role("embedder")?;
    let files = store.resolve(spec)?;
    let fingerprint = spec
        .files
        .iter()
        .map(|f| &f.sha256[..16])
        .collect::<Vec<_>>()
        .join("-");
    Embedder::load(&files, &format!("{}:{fingerprint}", spec.name))
}
