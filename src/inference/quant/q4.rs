//! [`Q4Matrix`]: GGUF's Q4_1 blocks as shipped (4-bit codes, f16 scale and
//! minimum), multiplied straight from the codes when decoding and widened to
//! 8-bit codes once per row group for a prompt.

use super::dispatch::{kernel, q4_kernel};
use super::q8::Q8Rows;
use super::{in_row_groups, BLOCK};

/// Bytes of 4-bit codes per block.
pub(super) const NIBBLE_BYTES: usize = BLOCK / 2;

/// GGUF Q4_1 blocks, split into codes, scales and minimums. The codes of a
/// block are 16 bytes: byte j holds weight j in its low half and weight j + 16
/// in its high half.
pub struct Q4Matrix {
    pub rows: usize,
    pub cols: usize,
    pub(super) nibbles: Vec<u8>,
    pub(super) scales: Vec<half::f16>,
    pub(super) minimums: Vec<half::f16>,
}

impl Q4Matrix {
    /// From the raw bytes of a GGUF Q4_1 tensor (20-byte blocks: f16 d, f16 m,
    /// 16 bytes of codes), without changing a weight.
    pub fn from_q4_1_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Option<Q4Matrix> {
        let blocks = rows * cols / BLOCK;
        if !cols.is_multiple_of(BLOCK) || bytes.len() != blocks * (4 + NIBBLE_BYTES) {
            return None;
        }
        let mut matrix = Q4Matrix {
            rows,
            cols,
            nibbles: Vec::with_capacity(blocks * NIBBLE_BYTES),
            scales: Vec::with_capacity(blocks),
            minimums: Vec::with_capacity(blocks),
        };
        for block in bytes.chunks_exact(4 + NIBBLE_BYTES) {
            matrix
                .scales
                .push(half::f16::from_le_bytes([block[0], block[1]]));
            matrix
                .minimums
                .push(half::f16::from_le_bytes([block[2], block[3]]));
            matrix.nibbles.extend_from_slice(&block[4..]);
        }
        Some(matrix)
    }

    pub fn stacked(parts: Vec<Q4Matrix>) -> Q4Matrix {
        let cols = parts[0].cols;
        assert!(parts.iter().all(|p| p.cols == cols));
        let rows = parts.iter().map(|p| p.rows).sum();
        let mut all = Q4Matrix {
            rows,
            cols,
            nibbles: Vec::with_capacity(rows * cols / 2),
            scales: Vec::with_capacity(rows * cols / BLOCK),
            minimums: Vec::with_capacity(rows * cols / BLOCK),
        };
        for part in parts {
            all.nibbles.extend(part.nibbles);
            all.scales.extend(part.scales);
            all.minimums.extend(part.minimums);
        }
        all
    }

    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        let blocks = self.cols / BLOCK;
        for (b, out) in out.chunks_exact_mut(BLOCK).enumerate() {
            let index = row * blocks + b;
            let codes = &self.nibbles[index * NIBBLE_BYTES..(index + 1) * NIBBLE_BYTES];
            let (d, m) = (self.scales[index].to_f32(), self.minimums[index].to_f32());
            for (j, &byte) in codes.iter().enumerate() {
                out[j] = d * f32::from(byte & 0x0F) + m;
                out[j + NIBBLE_BYTES] = d * f32::from(byte >> 4) + m;
            }
        }
    }

    pub fn apply(&self, input: &[f32], m: usize, out: &mut [f32]) {
        let activations = Q8Rows::quantize(input, m, self.cols);
        let sums = activations.block_sums();
        let (cols, blocks) = (self.cols, self.cols / BLOCK);
        let rows_of = |first: usize, count: usize| Q4Rows {
            nibbles: &self.nibbles[first * cols / 2..(first + count) * cols / 2],
            scales: &self.scales[first * blocks..(first + count) * blocks],
            minimums: &self.minimums[first * blocks..(first + count) * blocks],
        };
        if m == 1 {
            // Decoding: each weight is read once, straight from its 4-bit codes.
            let kernel = q4_kernel();
            in_row_groups(
                self.rows,
                m,
                out,
                |_, _| (),
                |_, first, count, i| {
                    kernel(
                        blocks,
                        count,
                        &rows_of(first, count),
                        activations.quants(i, cols),
                        activations.scales(i, blocks),
                        &sums[i * blocks..(i + 1) * blocks],
                    )
                },
            );
            return;
        }
        // A prompt: each group is widened once to 8-bit codes c = q - 8 (so
        // w = d·c + (m + 8d)) and every activation row reuses it through the
        // 8-bit kernel, plus the minimums' share.
        let kernel = kernel();
        let widen = |first: usize, count: usize| {
            let rows = rows_of(first, count);
            let mut codes = vec![0i8; count * cols];
            for (block, out) in rows
                .nibbles
                .chunks_exact(NIBBLE_BYTES)
                .zip(codes.chunks_exact_mut(BLOCK))
            {
                for (j, &byte) in block.iter().enumerate() {
                    out[j] = (byte & 0x0F) as i8 - 8;
                    out[j + NIBBLE_BYTES] = (byte >> 4) as i8 - 8;
                }
            }
            let scales: Vec<f32> = rows.scales.iter().map(|d| d.to_f32()).collect();
            let minimums: Vec<f32> = rows
                .minimums
                .iter()
                .zip(&scales)
                .map(|(m, d)| m.to_f32() + 8.0 * d)
                .collect();
            (codes, scales, minimums)
        };
        in_row_groups(
            self.rows,
            m,
            out,
            widen,
            |(codes, scales, minimums), _, count, i| {
                let mut result = kernel(
                    blocks,
                    count,
                    codes,
                    scales,
                    activations.quants(i, cols),
                    activations.scales(i, blocks),
                );
                let row_sums = &sums[i * blocks..(i + 1) * blocks];
                for (r, value) in result.iter_mut().enumerate().take(count) {
                    *value += minimums[r * blocks..(r + 1) * blocks]
                        .iter()
                        .zip(row_sums)
                        .map(|(m, s)| m * s)
                        .sum::<f32>();
                }
                result
            },
        );
    }
}

/// Up to four consecutive rows of a [`Q4Matrix`].
pub(crate) struct Q4Rows<'a> {
    pub(super) nibbles: &'a [u8],
    pub(super) scales: &'a [half::f16],
    pub(super) minimums: &'a [half::f16],
}
