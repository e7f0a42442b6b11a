//! The local models: the manifest and fetching ([`models`]), sentence embeddings
//! ([`embedder`]) and text generation ([`generator`]); [`peak`] measures the
//! arithmetic ceiling the encoder is compared with.
//!
//! No tokio or axum types in here: everything is blocking and is called from
//! worker threads by the async parts.

pub mod bert;
pub mod embedder;
pub mod generator;
pub mod kernels;
pub mod llama;
pub mod models;
pub mod peak;
pub mod pool;
pub mod quant;

pub use embedder::Embedder;
pub use generator::Generator;
pub use models::{ModelError, ModelStore};

use std::path::{Path, PathBuf};

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

/// Resolves (fetching if needed) and loads the generator model.
pub fn load_generator(models_dir: &Path) -> Result<Generator, ModelError> {
    let (gguf, sha256) = resolve_generator_file(models_dir)?;
    let name = gguf
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let fingerprint = format!("{name}:{}", &sha256[..16.min(sha256.len())]);
    Generator::load(&gguf, &fingerprint)
}

/// The generator's GGUF (fetched if needed) and its sha256 from the manifest.
pub fn resolve_generator_file(models_dir: &Path) -> Result<(PathBuf, String), ModelError> {
    let store = ModelStore::open(models_dir)?;
    let spec = store.spec_for_role("generator")?;
    let file = spec
        .files
        .iter()
        .find(|f| f.name.ends_with(".gguf"))
        .ok_or_else(|| ModelError::Load(format!("model `{}` lists no .gguf file", spec.name)))?;
    let files = store.resolve(spec)?;
    Ok((files.path(&file.name), file.sha256.clone()))
}
