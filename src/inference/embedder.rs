//! Sentence embeddings with all-MiniLM-L6-v2 through candle: BERT, mean pooling
//! over the attention mask, L2 normalisation. Vectors have [`DIMENSIONS`] floats
//! and unit length, so a dot product is the cosine similarity.
//!
//! Blocking and CPU-bound: callers on an async runtime must use spawn_blocking.

use super::models::{ModelError, ModelFiles};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

pub const DIMENSIONS: usize = 384;
/// MiniLM was trained on 128-token inputs; longer text is cut there.
const MAX_TOKENS: usize = 128;
const BATCH: usize = 32;

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    /// Identifies the weights, so cached vectors from another model are never reused.
    pub fingerprint: String,
}

fn load_error(what: &str, error: impl std::fmt::Display) -> ModelError {
    ModelError::Load(format!("embedder: {what}: {error}"))
}

impl Embedder {
    pub fn load(files: &ModelFiles, fingerprint: &str) -> Result<Embedder, ModelError> {
        let device = Device::Cpu;
        let config_text = std::fs::read_to_string(files.path("config.json"))
            .map_err(|e| load_error("config.json", e))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| load_error("config.json", e))?;
        let mut tokenizer = Tokenizer::from_file(files.path("tokenizer.json"))
            .map_err(|e| load_error("tokenizer.json", e))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| load_error("tokenizer", e))?;
        // SAFETY: the file is verified by sha256 and not modified while mapped.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[files.path("model.safetensors")], DTYPE, &device)
        }
        .map_err(|e| load_error("model.safetensors", e))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_error("weights", e))?;
        Ok(Embedder {
            model,
            tokenizer,
            device,
            fingerprint: fingerprint.to_string(),
        })
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        Ok(self.embed_batch(&[text])?.pop().unwrap_or_default())
    }

    /// Embeds many texts, in batches of similar length (less padding), in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut vectors = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| load_error("tokenize", e))?;
        let rows = encodings.len();
        let width = encodings[0].get_ids().len();
        let mut ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for encoding in &encodings {
            ids.extend(encoding.get_ids().iter().map(|&x| x as i64));
            mask.extend(encoding.get_attention_mask().iter().map(|&x| x as i64));
        }
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
            let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
            let type_ids = ids.zeros_like()?;
            let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
            let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
            let counts = mask_f.sum(1)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        };
        run().map_err(|e| load_error("forward", e))
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
