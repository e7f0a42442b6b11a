//! Quantized weight matrices and their products with f32 activations: the
//! kernels under every matrix of [`super::llama`].
//!
//! Two formats, both in blocks of 32 weights along a row:
//! - [`Q8Matrix`]: one i8 per weight and an f32 scale per block (GGUF's Q8_0
//!   with the scale widened);
//! - [`Q4Matrix`]: GGUF's Q4_1 exactly as shipped: 4-bit codes `q` and per block
//!   an f16 scale `d` and minimum `m`, the weight being `d·q + m`. At 0.625 bytes
//!   per weight instead of 1.125, decoding (which reads every weight once per
//!   token) moves 45 % fewer bytes.
//!
//! Activations are quantized to 8 bits once per product, so each block is an
//! integer dot product and a few float multiplies. On x86-64 the integer part
//! runs as AVX-512 VNNI `vpdpbusd` (one instruction per 32 weights) where the CPU
//! has it, else as AVX2 `vpmaddubsw` + `vpmaddwd`, else as plain Rust; four
//! weight rows are done together so their sums hide each other's latency. Rows
//! are shared out over candle's thread pool (the threads candle's own kernels use).
//!
//! `q8.rs` and `q4.rs` hold the two formats, `dispatch.rs` the kernel choice
//! and the plain kernels, `x86.rs` the SIMD kernels; [`Matrix`] and the row
//! groups over the thread pool are here.

mod dispatch;
mod q4;
mod q8;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use q4::Q4Matrix;
pub use q8::Q8Matrix;

pub const BLOCK: usize = 32;

/// A weight matrix in whichever format keeps its weights as shipped.
pub enum Matrix {
    Q8(Q8Matrix),
    Q4(Q4Matrix),
    /// Unquantized, multiplied in plain f32: the exact reference for tests.
    F32 {
        rows: usize,
        cols: usize,
        values: Vec<f32>,
    },
}

impl Matrix {
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Q8(m) => m.rows,
            Matrix::Q4(m) => m.rows,
            Matrix::F32 { rows, .. } => *rows,
        }
    }
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Q8(m) => m.cols,
            Matrix::Q4(m) => m.cols,
            Matrix::F32 { cols, .. } => *cols,
        }
    }
    pub fn apply(&self, input: &[f32], m: usize, out: &mut [f32]) {
        match self {
            Matrix::Q8(matrix) => matrix.apply(input, m, out),
            Matrix::Q4(matrix) => matrix.apply(input, m, out),
            Matrix::F32 { rows, cols, values } => {
                for (input, out) in input.chunks_exact(*cols).zip(out.chunks_exact_mut(*rows)) {
                    for (o, row) in out.iter_mut().zip(values.chunks_exact(*cols)) {
                        *o = row.iter().zip(input).map(|(w, x)| w * x).sum();
                    }
                }
            }
        }
    }
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        match self {
            Matrix::Q8(matrix) => matrix.row_into(row, out),
            Matrix::Q4(matrix) => matrix.row_into(row, out),
            Matrix::F32 { cols, values, .. } => {
                out.copy_from_slice(&values[row * cols..(row + 1) * cols])
            }
        }
    }
    /// The rows of `parts` in order; parts in different formats are all made Q8
    /// (or all f32 when one is).
    pub fn stacked(parts: Vec<Matrix>) -> Matrix {
        if parts.iter().any(|p| matches!(p, Matrix::F32 { .. })) {
            let cols = parts[0].cols();
            let rows = parts.iter().map(Matrix::rows).sum();
            let mut values = vec![0f32; rows * cols];
            let mut at = 0;
            for part in &parts {
                for row in 0..part.rows() {
                    part.row_into(row, &mut values[at * cols..(at + 1) * cols]);
                    at += 1;
                }
            }
            return Matrix::F32 { rows, cols, values };
        }
        if parts.iter().all(|p| matches!(p, Matrix::Q4(_))) {
            return Matrix::Q4(Q4Matrix::stacked(
                parts
                    .into_iter()
                    .filter_map(|p| match p {
                        Matrix::Q4(m) => Some(m),
                        _ => None,
                    })
                    .collect(),
            ));
        }
        Matrix::Q8(Q8Matrix::stacked(
            parts
                .into_iter()
                .map(|p| match p {
                    Matrix::Q8(m) => m,
                    Matrix::F32 { .. } => unreachable!("handled above"),
                    Matrix::Q4(m) => {
                        let mut values = vec![0f32; m.rows * m.cols];
                        for (row, out) in values.chunks_exact_mut(m.cols).enumerate() {
                            m.row_into(row, out);
                        }
                        Q8Matrix::from_f32(m.rows, m.cols, &values)
                    }
                })
                .collect(),
        ))
    }
}

/// Runs `dot(prepared, first_row, count, activation_row)` for every group of
/// four weight rows and every activation row, over candle's thread pool, and
/// stores the sums in `out` (`m × rows`). `prepare(first_row, count)` runs once
/// per group, before its activation rows.
fn in_row_groups<P>(
    rows: usize,
    m: usize,
    out: &mut [f32],
    prepare: impl Fn(usize, usize) -> P + Sync,
    dot: impl Fn(&P, usize, usize, usize) -> [f32; 4] + Sync,
) {
    assert!(out.len() >= m * rows);
    let out_address = out.as_mut_ptr() as usize;
    let work = |range: std::ops::Range<usize>| {
        for group in range {
            let first = group * 4;
            let count = (rows - first).min(4);
            let prepared = prepare(first, count);
            // The group's weights stay in L1 while every activation row passes.
            for i in 0..m {
                let sums = dot(&prepared, first, count, i);
                // SAFETY: each (i, row) element of `out` is written only by the
                // work item that owns the row's group; `out` outlives the call.
                unsafe {
                    let base = (out_address as *mut f32).add(i * rows + first);
                    for (r, &sum) in sums[..count].iter().enumerate() {
                        *base.add(r) = sum;
                    }
                }
            }
        }
    };
    candle_core::utils::barrier_pool().execute_chunked(rows.div_ceil(4), work);
}
