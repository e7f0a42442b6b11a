//! Sentence embeddings with all-MiniLM-L6-v2: the tokenizer, our BERT forward
//! pass ([`super::bert`], unpadded batches), mean pooling over each sentence's
//! tokens, L2 normalisation. Vectors have [`DIMENSIONS`] floats and unit
//! length, so a dot product is the cosine similarity.
//!
//! Blocking and CPU-bound: callers on an async runtime must use spawn_blocking.

use super::bert::Bert;
pub use super::bert::Pooled;
use super::models::{ModelError, ModelFiles};
use tokenizers::{Tokenizer, TruncationParams};

pub const DIMENSIONS: usize = 384;
/// MiniLM was trained on 128-token inputs; longer text is cut there.
const MAX_TOKENS: usize = 128;
const BATCH: usize = 32;

/// Bumped when our forward pass changes its arithmetic, so that vectors cached
/// by an earlier one are embedded again.
const FORWARD_REVISION: &str = "fd-bert-1";

pub struct Embedder {
    model: Bert,
    tokenizer: Tokenizer,
    /// Identifies the weights, so cached vectors from another model are never reused.
    pub fingerprint: String,
}

fn load_error(what: &str, error: impl std::fmt::Display) -> ModelError {
    ModelError::Load(format!("embedder: {what}: {error}"))
}

impl Embedder {
    pub fn load(files: &ModelFiles, fingerprint: &str) -> Result<Embedder, ModelError> {
        let mut tokenizer = Tokenizer::from_file(files.path("tokenizer.json"))
            .map_err(|e| load_error("tokenizer.json", e))?;
        // Sentences are laid end to end, never padded.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| load_error("tokenizer", e))?;
        let model = Bert::load(&files.path("config.json"), &files.path("model.safetensors"))?;
        Ok(Embedder {
            model,
            tokenizer,
            fingerprint: format!("{fingerprint}:{FORWARD_REVISION}"),
        })
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        Ok(self.embed_batch(&[text])?.pop().unwrap_or_default())
    }

    /// Embeds many texts, in batches of similar length (less padding), in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(self.pool(texts)?.iter().map(Pooled::unit).collect())
    }

    /// Each text's summed token states and token count, in input order:
    /// [`Pooled::unit`] is its embedding, and [`Pooled::combined`] over a
    /// message's sentences embeds the message without a pass of its own.
    pub fn pool(&self, texts: &[&str]) -> Result<Vec<Pooled>, ModelError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut pooled: Vec<Option<Pooled>> = vec![None; texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, part) in chunk.iter().zip(self.pool_batch(&batch)?) {
                pooled[i] = Some(part);
            }
        }
        Ok(pooled.into_iter().flatten().collect())
    }

    /// Token count (with [CLS] and [SEP]) and [`Bert::flops`] of embedding
    /// `text` alone: what `bench retrieval` holds against the machine's peak.
    pub fn cost(&self, text: &str) -> Result<(usize, f64), ModelError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| load_error("tokenize", e))?;
        let tokens = encoding.get_ids().len();
        Ok((tokens, self.model.flops(&[tokens])))
    }

    /// Bytes of weights one forward pass reads ([`Bert::weight_bytes`]).
    pub fn weight_bytes(&self) -> usize {
        self.model.weight_bytes()
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(self.pool_batch(texts)?.iter().map(Pooled::unit).collect())
    }

    fn pool_batch(&self, texts: &[&str]) -> Result<Vec<Pooled>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| load_error("tokenize", e))?;
        let sequences: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        self.model.pool(&sequences)
    }
}

/// Dot product of two unit vectors (their cosine similarity); the inner loop of
/// every search.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
}

/// Dot product. Eight independent partial sums let the compiler use SIMD lanes
/// (a single running sum cannot be reordered, so it stays scalar).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    #[test]
    fn cosine_matches_the_plain_dot_product() {
        let a: Vec<f32> = (0..389).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..389).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((super::cosine(&a, &b) - plain).abs() < 1e-3);
    }
}
