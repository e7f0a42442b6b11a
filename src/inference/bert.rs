//! Our BERT encoder forward pass (the sentence embedder's model), on the
//! kernels of [`super::kernels`].
//!
//! The sequences of a batch are laid end to end without padding: every
//! `Linear` runs once over all tokens of the batch, and only attention looks at
//! one sequence at a time. Query, key and value share one stacked product.
//! The arithmetic is BERT's (post-LayerNorm residual blocks, erf GELU, absolute
//! positions, token type 0); the test against candle's `BertModel` on the real
//! weights is in `tests/api/embedder.rs`.

use super::kernels::{self, Activation, HeadRows, Packed};
use super::models::ModelError;
use candle_core::{DType, Device};
use std::path::Path;

/// The fields of a BERT `config.json` the forward pass needs.
#[derive(serde::Deserialize)]
struct Config {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    layer_norm_eps: f64,
    #[serde(default = "default_activation")]
    hidden_act: String,
}

fn default_activation() -> String {
    "gelu".into()
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    /// `x = LayerNorm(x + residual)`, row by row.
    fn residual(&self, x: &mut [f32], residual: &[f32], eps: f32) {
        kernels::add_layer_norm(x, residual, self.gamma.len(), &self.gamma, &self.beta, eps);
    }
}

struct Layer {
    qkv: Packed,
    attention_out: Packed,
    attention_norm: Norm,
    intermediate: Packed,
    output: Packed,
    output_norm: Norm,
}

pub struct Bert {
    hidden: usize,
    heads: usize,
    max_positions: usize,
    eps: f32,
    words: Vec<f32>,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

fn load_error(what: impl std::fmt::Display) -> ModelError {
    ModelError::Load(format!("embedder: {what}"))
}

/// Reads the tensors of a safetensors file by name, as f32, checking shapes.
struct Weights {
    file: candle_core::safetensors::MmapedSafetensors,
    prefix: String,
}

impl Weights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let full = format!("{}{name}", self.prefix);
        let tensor = self
            .file
            .load(&full, &Device::Cpu)
            .map_err(|e| load_error(format!("model.safetensors: {full}: {e}")))?;
        if tensor.dims() != shape {
            return Err(load_error(format!(
                "model.safetensors: {full} has shape {:?}, expected {shape:?}",
                tensor.dims()
            )));
        }
        tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| load_error(format!("model.safetensors: {full}: {e}")))
    }

    fn norm(&self, name: &str, width: usize) -> Result<Norm, ModelError> {
        Ok(Norm {
            gamma: self.get(&format!("{name}.weight"), &[width])?,
            beta: self.get(&format!("{name}.bias"), &[width])?,
        })
    }

    fn linear(
        &self,
        name: &str,
        outputs: usize,
        inputs: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        Ok((
            self.get(&format!("{name}.weight"), &[outputs, inputs])?,
            self.get(&format!("{name}.bias"), &[outputs])?,
        ))
    }

    fn packed(&self, name: &str, outputs: usize, inputs: usize) -> Result<Packed, ModelError> {
        let (w, b) = self.linear(name, outputs, inputs)?;
        Ok(Packed::new(outputs, inputs, &w, &b))
    }
}

/// A sequence's last-layer token states summed, and how many tokens they
/// are: the mean is its embedding, and several sequences' sums add up to the
/// mean over all their tokens.
#[derive(Debug, Clone)]
pub struct Pooled {
    pub sum: Vec<f32>,
    pub tokens: usize,
}

impl Pooled {
    /// The mean token state, scaled to unit length.
    pub fn unit(&self) -> Vec<f32> {
        let count = self.tokens.max(1) as f32;
        let mut mean: Vec<f32> = self.sum.iter().map(|v| v / count).collect();
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            mean.iter_mut().for_each(|m| *m /= norm);
        }
        mean
    }

    /// The unit mean over all of `parts`' tokens together.
    pub fn combined(parts: &[Pooled]) -> Vec<f32> {
        let mut total = Pooled {
            sum: vec![0f32; parts.first().map_or(0, |p| p.sum.len())],
            tokens: 0,
        };
        for part in parts {
            total
                .sum
                .iter_mut()
                .zip(&part.sum)
                .for_each(|(t, v)| *t += v);
            total.tokens += part.tokens;
        }
        total.unit()
    }
}

impl Bert {
    /// Loads `config.json` and `model.safetensors` of a BERT encoder (tensor
    /// names as Hugging Face writes them, with or without a `bert.` prefix).
    pub fn load(config_path: &Path, weights_path: &Path) -> Result<Bert, ModelError> {
        let text = std::fs::read_to_string(config_path)
            .map_err(|e| load_error(format!("config.json: {e}")))?;
        let config: Config =
            serde_json::from_str(&text).map_err(|e| load_error(format!("config.json: {e}")))?;
        if config.hidden_act != "gelu" {
            return Err(load_error(format!(
                "config.json: hidden_act {:?} is not supported (only \"gelu\")",
                config.hidden_act
            )));
        }
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if heads == 0 || !h.is_multiple_of(heads) {
            return Err(load_error(format!(
                "config.json: {h} hidden units do not split into {heads} heads"
            )));
        }
        // SAFETY: the file is verified by sha256 and not modified while mapped.
        let file = unsafe { candle_core::safetensors::MmapedSafetensors::new(weights_path) }
            .map_err(|e| load_error(format!("model.safetensors: {e}")))?;
        let prefix = if file.get("bert.embeddings.word_embeddings.weight").is_ok() {
            "bert."
        } else {
            ""
        };
        let weights = Weights {
            file,
            prefix: prefix.into(),
        };
        let words_view = weights
            .file
            .get(&format!("{prefix}embeddings.word_embeddings.weight"))
            .map_err(|e| load_error(format!("model.safetensors: {e}")))?;
        let vocabulary = words_view.shape().first().copied().unwrap_or(0);
        let i = config.intermediate_size;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for n in 0..config.num_hidden_layers {
            let base = format!("encoder.layer.{n}");
            let q = weights.linear(&format!("{base}.attention.self.query"), h, h)?;
            let k = weights.linear(&format!("{base}.attention.self.key"), h, h)?;
            let v = weights.linear(&format!("{base}.attention.self.value"), h, h)?;
            layers.push(Layer {
                qkv: Packed::stacked(h, &[(&q.0, &q.1), (&k.0, &k.1), (&v.0, &v.1)]),
                attention_out: weights.packed(&format!("{base}.attention.output.dense"), h, h)?,
                attention_norm: weights.norm(&format!("{base}.attention.output.LayerNorm"), h)?,
                intermediate: weights.packed(&format!("{base}.intermediate.dense"), i, h)?,
                output: weights.packed(&format!("{base}.output.dense"), h, i)?,
                output_norm: weights.norm(&format!("{base}.output.LayerNorm"), h)?,
            });
        }
        let token_types = weights
            .file
            .get(&format!("{prefix}embeddings.token_type_embeddings.weight"));
        let token_type_count = token_types.map(|t| t.shape()[0]).unwrap_or(0);
        let token_type = weights.get(
            "embeddings.token_type_embeddings.weight",
            &[token_type_count, h],
        )?;
        Ok(Bert {
            hidden: h,
            heads,
            max_positions: config.max_position_embeddings,
            eps: config.layer_norm_eps as f32,
            words: weights.get("embeddings.word_embeddings.weight", &[vocabulary, h])?,
            positions: weights.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type: token_type[..h].to_vec(),
            embedding_norm: weights.norm("embeddings.LayerNorm", h)?,
            layers,
        })
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Floating-point operations (a multiply-add counts two) of one forward
    /// pass over sequences of these token counts: every `Linear` once per
    /// token, and per head the two attention products of each sequence.
    /// Layer norms, GELU and the softmax are left out (a few percent).
    pub fn flops(&self, lengths: &[usize]) -> f64 {
        let tokens: usize = lengths.iter().sum();
        let squares: usize = lengths.iter().map(|n| n * n).sum();
        let per_layer = |layer: &Layer| {
            let weights: usize = [
                &layer.qkv,
                &layer.attention_out,
                &layer.intermediate,
                &layer.output,
            ]
            .iter()
            .map(|w| w.inputs * w.outputs)
            .sum();
            2.0 * (weights * tokens) as f64 + 4.0 * (squares * self.hidden) as f64
        };
        self.layers.iter().map(per_layer).sum()
    }

    /// Bytes of the packed layer weights, which every forward pass reads
    /// once whatever its token count (the embedding tables are read only at
    /// the rows of its tokens).
    pub fn weight_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| {
                [&l.qkv, &l.attention_out, &l.intermediate, &l.output]
                    .iter()
                    .map(|w| w.bytes())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Mean-pooled, unit-length sentence vectors for token-id sequences (each
    /// already holding its [CLS] and [SEP]), in input order.
    pub fn embed(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(self.pool(sequences)?.iter().map(Pooled::unit).collect())
    }

    /// Each sequence's last-layer token states summed, with its token count,
    /// in input order: what mean pooling divides (see [`Pooled`]).
    pub fn pool(&self, sequences: &[&[u32]]) -> Result<Vec<Pooled>, ModelError> {
        let hidden = self.encode(sequences)?;
        let h = self.hidden;
        let mut pooled = Vec::with_capacity(sequences.len());
        let mut start = 0;
        for sequence in sequences {
            let mut sum = vec![0f32; h];
            for row in hidden[start * h..(start + sequence.len()) * h].chunks_exact(h) {
                sum.iter_mut().zip(row).for_each(|(m, v)| *m += v);
            }
            pooled.push(Pooled {
                sum,
                tokens: sequence.len(),
            });
            start += sequence.len();
        }
        Ok(pooled)
    }

    /// The last layer's hidden states of every token, sequences end to end
    /// (`total tokens × hidden`).
    pub fn encode(&self, sequences: &[&[u32]]) -> Result<Vec<f32>, ModelError> {
        let h = self.hidden;
        let tokens: usize = sequences.iter().map(|s| s.len()).sum();
        let vocabulary = self.words.len() / h;
        let mut hidden = vec![0f32; tokens * h];
        let mut rows = hidden.chunks_exact_mut(h);
        for sequence in sequences {
            if sequence.len() > self.max_positions {
                return Err(load_error(format!(
                    "a sequence of {} tokens is longer than the model's {} positions",
                    sequence.len(),
                    self.max_positions
                )));
            }
            for (position, &id) in sequence.iter().enumerate() {
                let id = id as usize;
                if id >= vocabulary {
                    return Err(load_error(format!(
                        "token id {id} is outside the vocabulary"
                    )));
                }
                let row = rows.next().expect("one row per token");
                let word = &self.words[id * h..(id + 1) * h];
                let place = &self.positions[position * h..(position + 1) * h];
                for (((r, w), p), t) in row.iter_mut().zip(word).zip(place).zip(&self.token_type) {
                    *r = w + p + t;
                }
                kernels::layer_norm_row(
                    row,
                    &self.embedding_norm.gamma,
                    &self.embedding_norm.beta,
                    self.eps,
                );
            }
        }
        let lengths: Vec<usize> = sequences.iter().map(|s| s.len()).collect();
        let mut qkv = vec![0f32; tokens * 3 * h];
        let mut context = vec![0f32; tokens * h];
        let mut projected = vec![0f32; tokens * h];
        let mut intermediate =
            vec![0f32; tokens * self.layers.first().map_or(0, |l| l.intermediate.outputs)];
        for layer in &self.layers {
            kernels::linear(&hidden, tokens, &layer.qkv, Activation::None, &mut qkv);
            self.attention(&qkv, &lengths, &mut context);
            kernels::linear(
                &context,
                tokens,
                &layer.attention_out,
                Activation::None,
                &mut projected,
            );
            layer
                .attention_norm
                .residual(&mut projected, &hidden, self.eps);
            std::mem::swap(&mut hidden, &mut projected);
            kernels::linear(
                &hidden,
                tokens,
                &layer.intermediate,
                Activation::Gelu,
                &mut intermediate,
            );
            kernels::linear(
                &intermediate,
                tokens,
                &layer.output,
                Activation::None,
                &mut projected,
            );
            layer
                .output_norm
                .residual(&mut projected, &hidden, self.eps);
            std::mem::swap(&mut hidden, &mut projected);
        }
        Ok(hidden)
    }

    /// Self-attention of every head of every sequence, shared out by [`super::pool`].
    fn attention(&self, qkv: &[f32], lengths: &[usize], context: &mut [f32]) {
        let h = self.hidden;
        let dims = h / self.heads;
        let starts: Vec<usize> = lengths
            .iter()
            .scan(0, |start, &n| {
                let first = *start;
                *start += n;
                Some(first)
            })
            .collect();
        assert!(context.len() >= lengths.iter().sum::<usize>() * h);
        let context_address = context.as_mut_ptr() as usize;
        let work = |items: std::ops::Range<usize>| {
            let (mut scores, mut local) = (Vec::new(), Vec::new());
            for item in items {
                let (sequence, head) = (item / self.heads, item % self.heads);
                let (start, tokens) = (starts[sequence], lengths[sequence]);
                let base = start * 3 * h + head * dims;
                let rows = HeadRows {
                    queries: &qkv[base..],
                    keys: &qkv[base + h..],
                    values: &qkv[base + 2 * h..],
                    stride: 3 * h,
                };
                local.resize(tokens * dims, 0.0);
                kernels::attend(&rows, tokens, dims, &mut scores, &mut local, dims);
                for (i, row) in local.chunks_exact(dims).enumerate() {
                    // SAFETY: each (sequence, head) item writes only its own
                    // head's columns of its own sequence's rows of `context`,
                    // which outlives the call; no two items overlap.
                    unsafe {
                        let target =
                            (context_address as *mut f32).add((start + i) * h + head * dims);
                        std::ptr::copy_nonoverlapping(row.as_ptr(), target, dims);
                    }
                }
            }
        };
        super::pool::for_each(lengths.len() * self.heads, work);
    }
}
