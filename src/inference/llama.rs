//! A lean llama-family decoder for the CPU: the forward pass of the transformer,
//! written for one request at a time on a few cores.
//!
//! candle's `quantized_llama` is general (batches, many devices) and pays for it
//! on a 135M-parameter model: it multiplies the shipped Q4_1 weights with scalar
//! code (or needs them converted to Q8_0, 1.8× the bytes to read per token),
//! every token runs ~25 small tensor ops per layer that each allocate, the KV
//! cache is copied on every step (`Tensor::cat`) and the grouped-query heads are
//! materialised (`repeat_kv`). Here the same maths runs on plain buffers:
//! - Q4_1 matrices stay as shipped and Q8_0 ones as 8-bit, multiplied by the
//!   SIMD kernels of [`super::quant`]; other quantizations become 8-bit at load;
//! - Q, K and V are one matrix, and so are the gate and up projections, so each
//!   layer makes four parallel matrix calls instead of seven;
//! - the KV cache is a growing `Vec<f32>` per layer (appending is O(1); a clone
//!   copies only the rows in use), and attention reads it in place, its
//!   (query, head) pairs shared out over the thread pool;
//! - the token embedding stays quantized (one row is expanded per token)
//!   instead of a dequantized 113 MB f32 table.
//!
//! tests/api/decoder.rs checks the logits against candle's `quantized_llama`
//! and against an exact f32 evaluation of the same weights.

use super::embedder::dot;
use super::quant::{Matrix, Q4Matrix, Q8Matrix, BLOCK};
use super::ModelError;
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use std::io::{Read, Seek};

fn llama_error(what: &str, error: impl std::fmt::Display) -> ModelError {
    ModelError::Load(format!("generator: {what}: {error}"))
}

/// The shape of the network, from the GGUF metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub context: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
}

impl Shape {
    fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }
    fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// Reads a 2-D tensor (`rows` outputs by `cols` inputs): Q4_1 and Q8_0 as
/// shipped, any other quantization converted to 8 bits (or all to f32 when
/// `exact`).
fn matrix_from(name: &str, tensor: &QTensor, exact: bool) -> Result<Matrix, ModelError> {
    let (rows, cols) = tensor.shape().dims2().map_err(|e| llama_error(name, e))?;
    if cols % BLOCK != 0 {
        return Err(llama_error(
            name,
            format!("{cols} columns are not a multiple of {BLOCK}"),
        ));
    }
    if tensor.dtype() == GgmlDType::Q4_1 && !exact {
        let bytes = tensor.data().map_err(|e| llama_error(name, e))?;
        return Q4Matrix::from_q4_1_bytes(rows, cols, &bytes)
            .map(Matrix::Q4)
            .ok_or_else(|| llama_error(name, "Q4_1 data has the wrong length"));
    }
    if tensor.dtype() == GgmlDType::Q8_0 && !exact {
        let bytes = tensor.data().map_err(|e| llama_error(name, e))?;
        return Q8Matrix::from_q8_0_bytes(rows, cols, &bytes)
            .map(Matrix::Q8)
            .ok_or_else(|| llama_error(name, "Q8_0 data has the wrong length"));
    }
    let values = tensor
        .dequantize(&Device::Cpu)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| llama_error(name, e))?;
    if exact {
        return Ok(Matrix::F32 { rows, cols, values });
    }
    Ok(Matrix::Q8(Q8Matrix::from_f32(rows, cols, &values)))
}

struct Layer {
    attention_norm: Vec<f32>,
    qkv: Matrix,
    output: Matrix,
    ffn_norm: Vec<f32>,
    gate_up: Matrix,
    down: Matrix,
}

/// The weights of a llama-family model. Immutable and shared between threads;
/// the state of one conversation lives in a [`KvCache`].
pub struct Llama {
    pub shape: Shape,
    embedding: Matrix,
    /// `None` when the output projection is tied to the embedding.
    lm_head: Option<Matrix>,
    final_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// cos and sin of position × frequency, `context × head_dim / 2` each.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
}

/// Keys (after rotation) and values of every position processed so far.
#[derive(Clone)]
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn metadata_u64(content: &Content, key: &str) -> Option<u64> {
    content
        .metadata
        .get(key)
        .and_then(super::generator::integer)
}

fn metadata_f32(content: &Content, key: &str) -> Option<f32> {
    content.metadata.get(key).and_then(|v| v.to_f32().ok())
}

impl Shape {
    fn from_metadata(content: &Content) -> Result<Shape, ModelError> {
        let need = |key: &str| {
            metadata_u64(content, key)
                .map(|v| v as usize)
                .ok_or_else(|| llama_error("GGUF metadata", format!("`{key}` is missing")))
        };
        let hidden = need("llama.embedding_length")?;
        let heads = need("llama.attention.head_count")?;
        let kv_heads =
            metadata_u64(content, "llama.attention.head_count_kv").map_or(heads, |v| v as usize);
        let head_dim = hidden / heads;
        if let Some(rope_dim) = metadata_u64(content, "llama.rope.dimension_count") {
            if rope_dim as usize != head_dim {
                return Err(llama_error(
                    "GGUF metadata",
                    "partial rotary embeddings are not supported",
                ));
            }
        }
        if heads % kv_heads != 0 || head_dim % 2 != 0 {
            return Err(llama_error("GGUF metadata", "unsupported head layout"));
        }
        if metadata_u64(content, "llama.expert_count").unwrap_or(0) > 1 {
            return Err(llama_error(
                "GGUF metadata",
                "mixture-of-experts models are not supported",
            ));
        }
        let embedding = content
            .tensor_infos
            .get("token_embd.weight")
            .ok_or_else(|| llama_error("GGUF", "`token_embd.weight` is missing"))?;
        let vocab = embedding.shape.dims()[0];
        Ok(Shape {
            layers: need("llama.block_count")?,
            hidden,
            heads,
            kv_heads,
            head_dim,
            ffn: need("llama.feed_forward_length")?,
            vocab,
            context: metadata_u64(content, "llama.context_length").map_or(2048, |v| v as usize),
            rms_eps: metadata_f32(content, "llama.attention.layer_norm_rms_epsilon")
                .unwrap_or(1e-5),
            rope_base: metadata_f32(content, "llama.rope.freq_base").unwrap_or(10_000.0),
        })
    }
}

impl Llama {
    /// Reads the weights of a llama-architecture GGUF. Matrices in other
    /// quantizations are converted to Q8_0 here.
    pub fn from_gguf<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        max_context: usize,
    ) -> Result<Llama, ModelError> {
        Self::load(content, reader, max_context, false)
    }

    /// The same weights dequantized to f32 and multiplied without quantizing
    /// the activations: slow, the exact reference the fast path is tested
    /// against.
    pub fn from_gguf_exact<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        max_context: usize,
    ) -> Result<Llama, ModelError> {
        Self::load(content, reader, max_context, true)
    }

    fn load<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        max_context: usize,
        exact: bool,
    ) -> Result<Llama, ModelError> {
        let mut shape = Shape::from_metadata(content)?;
        shape.context = shape.context.min(max_context);
        let tensor = |reader: &mut R, name: &str| -> Result<QTensor, ModelError> {
            content
                .tensor(reader, name, &Device::Cpu)
                .map_err(|e| llama_error(name, e))
        };
        let matrix = |reader: &mut R, name: &str| -> Result<Matrix, ModelError> {
            matrix_from(name, &tensor(reader, name)?, exact)
        };
        let vector = |reader: &mut R, name: &str| -> Result<Vec<f32>, ModelError> {
            tensor(reader, name)?
                .dequantize(&Device::Cpu)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| llama_error(name, e))
        };
        let embedding = matrix(reader, "token_embd.weight")?;
        let lm_head = if content.tensor_infos.contains_key("output.weight") {
            Some(matrix(reader, "output.weight")?)
        } else {
            None
        };
        let final_norm = vector(reader, "output_norm.weight")?;
        let mut layers = Vec::with_capacity(shape.layers);
        for index in 0..shape.layers {
            let name = |part: &str| format!("blk.{index}.{part}.weight");
            let qkv = Matrix::stacked(vec![
                matrix(reader, &name("attn_q"))?,
                matrix(reader, &name("attn_k"))?,
                matrix(reader, &name("attn_v"))?,
            ]);
            let gate_up = Matrix::stacked(vec![
                matrix(reader, &name("ffn_gate"))?,
                matrix(reader, &name("ffn_up"))?,
            ]);
            layers.push(Layer {
                attention_norm: vector(reader, &name("attn_norm"))?,
                qkv,
                output: matrix(reader, &name("attn_output"))?,
                ffn_norm: vector(reader, &name("ffn_norm"))?,
                gate_up,
                down: matrix(reader, &name("ffn_down"))?,
            });
        }
        let llama = Llama {
            shape,
            embedding,
            lm_head,
            final_norm,
            layers,
            rope_cos: Vec::new(),
            rope_sin: Vec::new(),
        };
        llama.check_shapes()?;
        Ok(llama.with_rope_tables())
    }

    fn check_shapes(&self) -> Result<(), ModelError> {
        let s = &self.shape;
        let expect = |what: &str, m: &Matrix, rows: usize, cols: usize| {
            if m.rows() == rows && m.cols() == cols {
                Ok(())
            } else {
                Err(llama_error(
                    what,
                    format!("is {}×{}, expected {rows}×{cols}", m.rows(), m.cols()),
                ))
            }
        };
        expect("token_embd", &self.embedding, s.vocab, s.hidden)?;
        if let Some(head) = &self.lm_head {
            expect("output", head, s.vocab, s.hidden)?;
        }
        for layer in &self.layers {
            expect(
                "attn_qkv",
                &layer.qkv,
                s.q_width() + 2 * s.kv_width(),
                s.hidden,
            )?;
            expect("attn_output", &layer.output, s.hidden, s.q_width())?;
            expect("ffn_gate_up", &layer.gate_up, 2 * s.ffn, s.hidden)?;
            expect("ffn_down", &layer.down, s.hidden, s.ffn)?;
            if layer.attention_norm.len() != s.hidden || layer.ffn_norm.len() != s.hidden {
                return Err(llama_error("norm", "wrong length"));
            }
        }
        Ok(())
    }

    /// Interleaved ("normal") rotary embeddings, as llama.cpp uses for llama.
    fn with_rope_tables(mut self) -> Llama {
        let half = self.shape.head_dim / 2;
        let mut cos = Vec::with_capacity(self.shape.context * half);
        let mut sin = Vec::with_capacity(self.shape.context * half);
        for position in 0..self.shape.context {
            for i in 0..half {
                let frequency = 1.0
                    / self
                        .shape
                        .rope_base
                        .powf((2 * i) as f32 / self.shape.head_dim as f32);
                let angle = position as f32 * frequency;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        self.rope_cos = cos;
        self.rope_sin = sin;
        self
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache {
            keys: vec![Vec::new(); self.shape.layers],
            values: vec![Vec::new(); self.shape.layers],
            len: 0,
        }
    }

    /// Runs `tokens` at the positions after those in `cache`, appends their keys
    /// and values to it, and returns the logits after the last token.
    pub fn forward(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        let s = self.shape;
        let m = tokens.len();
        if m == 0 {
            return Err(llama_error("forward", "no tokens"));
        }
        if cache.len + m > s.context {
            return Err(llama_error(
                "forward",
                format!(
                    "{} positions exceed the {}-token context",
                    cache.len + m,
                    s.context
                ),
            ));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= s.vocab) {
            return Err(llama_error(
                "forward",
                format!("token {bad} is outside the vocabulary"),
            ));
        }
        let start = cache.len;
        let qkv_width = s.q_width() + 2 * s.kv_width();
        let mut x = vec![0f32; m * s.hidden];
        for (row, &token) in x.chunks_exact_mut(s.hidden).zip(tokens) {
            self.embedding.row_into(token as usize, row);
        }
        let mut normed = vec![0f32; m * s.hidden];
        let mut qkv = vec![0f32; m * qkv_width];
        let mut attended = vec![0f32; m * s.q_width()];
        let mut projected = vec![0f32; m * s.hidden];
        let mut gate_up = vec![0f32; m * 2 * s.ffn];
        let mut activated = vec![0f32; m * s.ffn];

        for (index, layer) in self.layers.iter().enumerate() {
            rms_norm(&x, &layer.attention_norm, s.rms_eps, &mut normed);
            layer.qkv.apply(&normed, m, &mut qkv);
            let keys = &mut cache.keys[index];
            let values = &mut cache.values[index];
            keys.reserve(m * s.kv_width());
            values.reserve(m * s.kv_width());
            for (i, row) in qkv.chunks_exact_mut(qkv_width).enumerate() {
                let (q, kv) = row.split_at_mut(s.q_width());
                let (k, v) = kv.split_at_mut(s.kv_width());
                self.rotate(q, start + i);
                self.rotate(k, start + i);
                keys.extend_from_slice(k);
                values.extend_from_slice(v);
            }
            attend(&s, &qkv, keys, values, start, &mut attended);
            layer.output.apply(&attended, m, &mut projected);
            add(&mut x, &projected);

            rms_norm(&x, &layer.ffn_norm, s.rms_eps, &mut normed);
            layer.gate_up.apply(&normed, m, &mut gate_up);
            for (row, out) in gate_up
                .chunks_exact(2 * s.ffn)
                .zip(activated.chunks_exact_mut(s.ffn))
            {
                let (gate, up) = row.split_at(s.ffn);
                for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                    *o = g / (1.0 + (-g).exp()) * u;
                }
            }
            layer.down.apply(&activated, m, &mut projected);
            add(&mut x, &projected);
        }
        cache.len += m;

        let last = &x[(m - 1) * s.hidden..];
        let mut last_normed = vec![0f32; s.hidden];
        rms_norm(last, &self.final_norm, s.rms_eps, &mut last_normed);
        let mut logits = vec![0f32; s.vocab];
        self.lm_head
            .as_ref()
            .unwrap_or(&self.embedding)
            .apply(&last_normed, 1, &mut logits);
        Ok(logits)
    }

    /// Rotates each head of `heads` (pairs 2i, 2i+1) for `position`.
    fn rotate(&self, heads: &mut [f32], position: usize) {
        let half = self.shape.head_dim / 2;
        let cos = &self.rope_cos[position * half..(position + 1) * half];
        let sin = &self.rope_sin[position * half..(position + 1) * half];
        for head in heads.chunks_exact_mut(self.shape.head_dim) {
            for (pair, (&c, &s)) in head.chunks_exact_mut(2).zip(cos.iter().zip(sin)) {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * c - b * s;
                pair[1] = a * s + b * c;
            }
        }
    }
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let width = weight.len();
    for (row, out) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let mean_square = dot(row, row) / width as f32;
        let scale = 1.0 / (mean_square + eps).sqrt();
        for ((o, &v), &w) in out.iter_mut().zip(row).zip(weight) {
            *o = v * scale * w;
        }
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Causal grouped-query attention of the `m` new queries in `qkv` over every
/// cached position up to their own; writes `m × heads × head_dim` to `out`.
/// The (query, head) pairs are shared out over candle's thread pool.
fn attend(s: &Shape, qkv: &[f32], keys: &[f32], values: &[f32], start: usize, out: &mut [f32]) {
    let qkv_width = s.q_width() + 2 * s.kv_width();
    let group = s.heads / s.kv_heads;
    let scale = 1.0 / (s.head_dim as f32).sqrt();
    let items = (qkv.len() / qkv_width) * s.heads;
    let out_address = out.as_mut_ptr() as usize;
    let work = |range: std::ops::Range<usize>| {
        let mut scores = Vec::with_capacity(start + qkv.len() / qkv_width);
        for item in range {
            let (i, head) = (item / s.heads, item % s.heads);
            let kv_head = head / group;
            let query = &qkv[i * qkv_width + head * s.head_dim..][..s.head_dim];
            let visible = start + i + 1;
            scores.clear();
            let mut highest = f32::NEG_INFINITY;
            for t in 0..visible {
                let key = &keys[t * s.kv_width() + kv_head * s.head_dim..][..s.head_dim];
                let score = dot(query, key) * scale;
                highest = highest.max(score);
                scores.push(score);
            }
            let mut total = 0.0;
            for score in scores.iter_mut() {
                *score = (*score - highest).exp();
                total += *score;
            }
            // SAFETY: each item writes only its own `head_dim` slice of `out`,
            // and every item is handed to exactly one worker.
            let result = unsafe {
                std::slice::from_raw_parts_mut(
                    (out_address as *mut f32).add(item * s.head_dim),
                    s.head_dim,
                )
            };
            result.fill(0.0);
            for (t, &weight) in scores.iter().enumerate() {
                let weight = weight / total;
                let value = &values[t * s.kv_width() + kv_head * s.head_dim..][..s.head_dim];
                for (r, &v) in result.iter_mut().zip(value) {
                    *r += weight * v;
                }
            }
        }
    };
    candle_core::utils::barrier_pool().execute_chunked(items, work);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum_for_every_tail_length() {
        for n in 0..20 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "n = {n}");
        }
    }

    #[test]
    fn rms_norm_scales_each_row_to_unit_root_mean_square() {
        let x = [3.0, 4.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let mut out = [0.0; 8];
        rms_norm(&x, &[1.0, 1.0, 2.0, 1.0], 0.0, &mut out);
        assert!((out[0] - 1.2).abs() < 1e-6 && (out[1] - 1.6).abs() < 1e-6);
        assert_eq!(&out[4..], &[1.0, 1.0, 2.0, 1.0]);
    }
}
