//! [`Q8Matrix`]: one i8 per weight and an f32 scale per block, and the
//! activations quantized the same way (`Q8Rows`) once per product.

use super::dispatch::kernel;
use super::{in_row_groups, BLOCK};

/// `rows` outputs by `cols` inputs.
pub struct Q8Matrix {
    pub rows: usize,
    pub cols: usize,
    pub(super) quants: Vec<i8>,
    pub(super) scales: Vec<f32>,
}

/// Activations quantized like the weights, `rows × cols`.
pub(super) struct Q8Rows {
    pub(super) quants: Vec<i8>,
    pub(super) scales: Vec<f32>,
}

pub(super) fn quantize_into(values: &[f32], quants: &mut [i8], scales: &mut [f32]) {
    for ((block, q), scale) in values
        .chunks_exact(BLOCK)
        .zip(quants.chunks_exact_mut(BLOCK))
        .zip(scales.iter_mut())
    {
        let largest = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = largest / 127.0;
        let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
        for (q, &v) in q.iter_mut().zip(block) {
            *q = (v * inverse).round() as i8;
        }
        *scale = d;
    }
}

impl Q8Matrix {
    /// Quantizes a row-major `rows × cols` matrix; `cols` must be a multiple of 32.
    pub fn from_f32(rows: usize, cols: usize, values: &[f32]) -> Q8Matrix {
        assert!(cols.is_multiple_of(BLOCK) && values.len() == rows * cols);
        let mut quants = vec![0i8; rows * cols];
        let mut scales = vec![0f32; rows * cols / BLOCK];
        quantize_into(values, &mut quants, &mut scales);
        Q8Matrix {
            rows,
            cols,
            quants,
            scales,
        }
    }

    /// From the raw bytes of a GGUF Q8_0 tensor (34-byte blocks: f16 scale, 32
    /// i8 codes), without changing a weight.
    pub fn from_q8_0_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Option<Q8Matrix> {
        let blocks = rows * cols / BLOCK;
        if !cols.is_multiple_of(BLOCK) || bytes.len() != blocks * (2 + BLOCK) {
            return None;
        }
        let mut matrix = Q8Matrix {
            rows,
            cols,
            quants: Vec::with_capacity(rows * cols),
            scales: Vec::with_capacity(blocks),
        };
        for block in bytes.chunks_exact(2 + BLOCK) {
            matrix
                .scales
                .push(half::f16::from_le_bytes([block[0], block[1]]).to_f32());
            matrix.quants.extend(block[2..].iter().map(|&b| b as i8));
        }
        Some(matrix)
    }

    /// One matrix whose rows are those of `parts`, in order (same width).
    pub fn stacked(parts: Vec<Q8Matrix>) -> Q8Matrix {
        let cols = parts[0].cols;
        assert!(parts.iter().all(|p| p.cols == cols));
        let rows = parts.iter().map(|p| p.rows).sum();
        let mut quants = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(rows * cols / BLOCK);
        for part in parts {
            quants.extend(part.quants);
            scales.extend(part.scales);
        }
        Q8Matrix {
            rows,
            cols,
            quants,
            scales,
        }
    }

    /// Row `row`, dequantized.
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        let blocks = self.cols / BLOCK;
        let quants = &self.quants[row * self.cols..(row + 1) * self.cols];
        let scales = &self.scales[row * blocks..(row + 1) * blocks];
        for ((out, q), &d) in out
            .chunks_exact_mut(BLOCK)
            .zip(quants.chunks_exact(BLOCK))
            .zip(scales)
        {
            for (o, &q) in out.iter_mut().zip(q) {
                *o = f32::from(q) * d;
            }
        }
    }

    /// `out[i × rows + r] = Σ_c self[r][c] · input[i × cols + c]` for the `m`
    /// rows of `input`.
    pub fn apply(&self, input: &[f32], m: usize, out: &mut [f32]) {
        let activations = Q8Rows::quantize(input, m, self.cols);
        let kernel = kernel();
        let (cols, blocks) = (self.cols, self.cols / BLOCK);
        in_row_groups(
            self.rows,
            m,
            out,
            |_, _| (),
            |_, first, count, i| {
                kernel(
                    blocks,
                    count,
                    &self.quants[first * cols..(first + count) * cols],
                    &self.scales[first * blocks..(first + count) * blocks],
                    activations.quants(i, cols),
                    activations.scales(i, blocks),
                )
            },
        );
    }
}

impl Q8Rows {
    pub(super) fn quantize(input: &[f32], m: usize, cols: usize) -> Q8Rows {
        assert_eq!(input.len(), m * cols);
        let mut rows = Q8Rows {
            quants: vec![0i8; m * cols],
            scales: vec![0f32; m * cols / BLOCK],
        };
        quantize_into(input, &mut rows.quants, &mut rows.scales);
        rows
    }
    pub(super) fn quants(&self, row: usize, cols: usize) -> &[i8] {
        &self.quants[row * cols..(row + 1) * cols]
    }
    pub(super) fn scales(&self, row: usize, blocks: usize) -> &[f32] {
        &self.scales[row * blocks..(row + 1) * blocks]
    }
    /// Per block, scale × the sum of its codes (what a Q4_1 minimum multiplies).
    pub(super) fn block_sums(&self) -> Vec<f32> {
        self.quants
            .chunks_exact(BLOCK)
            .zip(&self.scales)
            .map(|(q, &d)| d * q.iter().map(|&v| i32::from(v)).sum::<i32>() as f32)
            .collect()
    }
}
