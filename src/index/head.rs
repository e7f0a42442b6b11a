//! A small classifier head over the frozen embeddings: multinomial logistic
//! regression from a message vector to the entry it asks about, trained at
//! index build on the owner's own phrasings and passages.
//!
//! Nearest-vector search only asks which one phrasing a message is closest to;
//! the head learns which directions separate one entry's phrasings from its
//! neighbours' (the words that make "do you deliver" not "do you cater"), so a
//! customer who words a question unlike any single phrasing can still land on
//! the right entry. It is a ranking signal only; confidence stays on the
//! similarity evidence the calibration measures.
//!
//! Training is deterministic: weights start at each entry's mean vector, then a
//! fixed number of full-batch gradient steps (Nesterov momentum) with no
//! randomness; samples are weighted so every entry counts the same whatever its
//! number of phrasings. The result is cached on disk by a hash of everything it
//! depends on, so a reload that changed nothing trains nothing, and the cost is
//! bounded: a knowledge base above [`MOST_WORK`] gets no head.

use crate::inference::embedder::DIMENSIONS;
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Inverse temperature: unit vectors give logits of a usable spread.
const SCALE: f32 = 20.0;
/// Full-batch gradient steps.
const STEPS: usize = 120;
const LEARNING_RATE: f32 = 0.5;
const MOMENTUM: f32 = 0.9;
/// L2 penalty on the weights' distance from their starting means: keeps the
/// head close to a nearest-mean classifier where the phrasings say little.
const L2: f32 = 0.02;
/// samples × entries above which training is skipped (it would take seconds).
pub const MOST_WORK: usize = 8_000_000;
/// Bump when the training changes, so cached heads are not reused.
const VERSION: u32 = 1;

/// Trained weights: one row of `DIMENSIONS` per entry and a bias each.
pub struct ClassifierHead {
    /// `entries × DIMENSIONS`, row-major, already multiplied by [`SCALE`].
    weights: Vec<f32>,
    bias: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl ClassifierHead {
    /// Trains (or loads from `cache_dir`) the head for `vectors` (row-major
    /// unit vectors) labelled by `labels` (entry per row), over `entries`
    /// classes. `None` when there is nothing to learn (fewer than two entries
    /// with vectors) or too much work.
    pub fn train_cached(
        vectors: &[f32],
        labels: &[usize],
        entries: usize,
        cache_dir: Option<&Path>,
    ) -> Option<ClassifierHead> {
        let samples = labels.len();
        if entries < 2 || samples == 0 || samples.saturating_mul(entries) > MOST_WORK {
            return None;
        }
        let key = cache_key(vectors, labels, entries);
        let path = cache_dir.map(|dir| dir.join(format!("head-{key}.bin")));
        if let Some(head) = path.as_deref().and_then(|p| Self::load(p, entries)) {
            return Some(head);
        }
        let head = match train(vectors, labels, entries) {
            Ok(head) => head,
            Err(error) => {
                tracing::warn!(%error, "classifier head not trained; ranking without it");
                return None;
            }
        };
        if let Some(path) = &path {
            if let Err(error) = head.save(path) {
                tracing::warn!(%error, "classifier head not cached");
            }
        }
        Some(head)
    }

    /// Softmax probabilities of every entry for one unit query vector.
    pub fn probabilities(&self, query: &[f32]) -> Vec<f32> {
        self.probabilities_of(&[query]).pop().unwrap_or_default()
    }

    /// [`Self::probabilities`] for several query vectors, in one parallel
    /// pass over the weights.
    pub fn probabilities_of(&self, queries: &[&[f32]]) -> Vec<Vec<f32>> {
        let dots = super::scan::similarities(&self.weights, queries);
        (0..queries.len())
            .map(|q| {
                let logits: Vec<f32> = self
                    .bias
                    .iter()
                    .enumerate()
                    .map(|(row, bias)| dots[row * queries.len() + q] + bias)
                    .collect();
                softmax(&logits)
            })
            .collect()
    }

    fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity((self.weights.len() + self.bias.len()) * 4);
        for value in self.weights.iter().chain(&self.bias) {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        // Temporary name, then rename: a crash never leaves half a head.
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, &bytes)?;
        std::fs::rename(&temporary, path)
    }

    fn load(path: &Path, entries: usize) -> Option<ClassifierHead> {
        let bytes = std::fs::read(path).ok()?;
        if bytes.len() != entries * (DIMENSIONS + 1) * 4 {
            return None;
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let (weights, bias) = values.split_at(entries * DIMENSIONS);
        Some(ClassifierHead {
            weights: weights.to_vec(),
            bias: bias.to_vec(),
        })
    }
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let most = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - most).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

/// Hash of the training data and method: a changed phrasing, entry order or
/// training constant gives another file.
fn cache_key(vectors: &[f32], labels: &[usize], entries: usize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(VERSION.to_le_bytes());
    hasher.update((entries as u64).to_le_bytes());
    for (label, row) in labels.iter().zip(vectors.chunks_exact(DIMENSIONS)) {
        hasher.update((*label as u64).to_le_bytes());
        for value in row {
            hasher.update(value.to_le_bytes());
        }
    }
    hex::encode(&hasher.finalize()[..12])
}

fn train(vectors: &[f32], labels: &[usize], entries: usize) -> Result<ClassifierHead, HeadError> {
    let started = std::time::Instant::now();
    let device = Device::Cpu;
    let samples = labels.len();
    // Every entry weighs the same in the loss whatever its number of vectors.
    let mut counts = vec![0usize; entries];
    for &label in labels {
        counts[label] += 1;
    }
    let mut targets = vec![0.0f32; samples * entries];
    let mut weights_per_sample = vec![0.0f32; samples];
    for (row, &label) in labels.iter().enumerate() {
        targets[row * entries + label] = 1.0;
        weights_per_sample[row] = 1.0 / counts[label] as f32;
    }
    // Start at each entry's mean vector (a nearest-mean classifier).
    let mut start = vec![0.0f32; DIMENSIONS * entries];
    for (row, &label) in vectors.chunks_exact(DIMENSIONS).zip(labels) {
        for (d, value) in row.iter().enumerate() {
            start[d * entries + label] += value;
        }
    }
    for entry in 0..entries {
        let norm = (0..DIMENSIONS)
            .map(|d| start[d * entries + entry].powi(2))
            .sum::<f32>()
            .sqrt();
        if norm > 0.0 {
            for d in 0..DIMENSIONS {
                start[d * entries + entry] *= SCALE / norm;
            }
        }
    }
    let x = Tensor::from_slice(vectors, (samples, DIMENSIONS), &device)?;
    let xt = x.t()?.contiguous()?;
    let y = Tensor::from_slice(&targets, (samples, entries), &device)?;
    let sample_weight = Tensor::from_slice(&weights_per_sample, (samples, 1), &device)?;
    let w0 = Tensor::from_slice(&start, (DIMENSIONS, entries), &device)?;
    let mut w = w0.clone();
    let mut b = Tensor::zeros((1, entries), DType::F32, &device)?;
    let mut velocity_w = Tensor::zeros((DIMENSIONS, entries), DType::F32, &device)?;
    let mut velocity_b = Tensor::zeros((1, entries), DType::F32, &device)?;
    for _ in 0..STEPS {
        // Nesterov: the gradient at the look-ahead point.
        let look_w = (&w + (&velocity_w * MOMENTUM as f64)?)?;
        let look_b = (&b + (&velocity_b * MOMENTUM as f64)?)?;
        let logits = x.matmul(&look_w)?.broadcast_add(&look_b)?;
        let most = logits.max_keepdim(1)?;
        let exps = logits.broadcast_sub(&most)?.exp()?;
        let probabilities = exps.broadcast_div(&exps.sum_keepdim(1)?)?;
        let error = (probabilities - &y)?.broadcast_mul(&sample_weight)?;
        let gradient_w = (xt.matmul(&error)? + ((&look_w - &w0)? * L2 as f64)?)?;
        let gradient_b = error.sum_keepdim(0)?;
        velocity_w = ((&velocity_w * MOMENTUM as f64)? - (gradient_w * LEARNING_RATE as f64)?)?;
        velocity_b = ((&velocity_b * MOMENTUM as f64)? - (gradient_b * LEARNING_RATE as f64)?)?;
        w = (&w + &velocity_w)?;
        b = (&b + &velocity_b)?;
    }
    tracing::debug!(
        samples,
        entries,
        ms = started.elapsed().as_millis() as u64,
        "classifier head trained"
    );
    // Stored entry-major for a dot product per entry at query time.
    let weights = w.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let bias = b.flatten_all()?.to_vec1::<f32>()?;
    Ok(ClassifierHead { weights, bias })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector pointing mostly along axis `axis`, nudged along `nudge`.
    fn unit(axis: usize, nudge: usize, amount: f32) -> Vec<f32> {
        let mut v = vec![0.0f32; DIMENSIONS];
        v[axis] = 1.0;
        v[nudge] += amount;
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    #[test]
    fn learns_what_separates_two_entries_and_is_deterministic() {
        // Entries 0 and 1 share axis 0; only axes 1 and 2 tell them apart.
        let rows = [
            unit(0, 1, 0.5),
            unit(0, 1, 0.6),
            unit(0, 2, 0.5),
            unit(0, 2, 0.6),
        ];
        let vectors: Vec<f32> = rows.concat();
        let labels = [0, 0, 1, 1];
        let head = ClassifierHead::train_cached(&vectors, &labels, 2, None).unwrap();
        let p = head.probabilities(&unit(0, 1, 0.3));
        assert!(p[0] > 0.8, "{p:?}");
        let p = head.probabilities(&unit(0, 2, 0.3));
        assert!(p[1] > 0.8, "{p:?}");
        let again = ClassifierHead::train_cached(&vectors, &labels, 2, None).unwrap();
        assert_eq!(head.weights, again.weights);
        assert_eq!(head.bias, again.bias);
    }

    #[test]
    fn a_cached_head_is_reused_and_a_changed_one_is_not() {
        let dir = std::env::temp_dir().join(format!("frontdesk-head-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vectors: Vec<f32> = [unit(0, 1, 0.5), unit(3, 2, 0.5)].concat();
        let first = ClassifierHead::train_cached(&vectors, &[0, 1], 2, Some(&dir)).unwrap();
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 1);
        let loaded = ClassifierHead::train_cached(&vectors, &[0, 1], 2, Some(&dir)).unwrap();
        assert_eq!(first.weights, loaded.weights);
        ClassifierHead::train_cached(&vectors, &[1, 0], 2, Some(&dir)).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn too_much_work_gets_no_head() {
        let vectors = vec![0.0f32; DIMENSIONS];
        assert!(ClassifierHead::train_cached(&vectors, &[0], MOST_WORK + 1, None).is_none());
    }
}
