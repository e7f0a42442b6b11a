//! An 8-bit copy of a matrix of stored vectors for the first, approximate
//! pass of a query, with a proven bound on how far each approximate
//! similarity can be from the exact f32 one.
//!
//! Each row is stored as `i8` codes times one scale (its largest magnitude
//! over 127), a quarter of the f32 bytes; each query as `i16` codes times its
//! own scale. The products of codes are summed in `i32`, which is exact (a
//! row's sum stays below 2^31), so the AVX2 kernel and the portable loop give
//! the same bits and the only losses are the two roundings to codes. With
//! `r` a stored row, `R` its decoded codes, `v` a query and `V` its decoded
//! codes, `r·v − R·V = (r − R)·v + R·(v − V)`, so by Cauchy–Schwarz
//! `|r·v − R·V| ≤ ‖r − R‖‖v‖ + ‖R‖‖v − V‖`. The residual norms are measured
//! when the codes are made; the bound adds the floating-point error of the
//! exact f32 dot product (at most `n·u·‖r‖‖v‖` for `n` terms and unit
//! roundoff `u`) and of the final scaling, with a margin. The exact value of
//! every row therefore lies in `[approx − bound, approx + bound]`, which lets
//! the ranking ([`super::rank`]) re-score in f32 only the entries whose
//! interval can still reach the top.

use crate::inference::embedder::DIMENSIONS;

/// Rows per work item of the parallel pass.
const ROWS_PER_ITEM: usize = 512;
/// Query vectors handled in one pass over the rows.
const BLOCK: usize = 8;
/// Codes summed per AVX2 step (sixteen `i16` lanes).
const STEP: usize = 16;
const _: () = assert!(DIMENSIONS.is_multiple_of(STEP));
/// `i8` codes up to ±127 times `i16` codes up to ±32767, `DIMENSIONS` of
/// them: the sum must fit an `i32` (and each pair of products an `i32`, which
/// `madd` forms first).
const _: () = assert!((DIMENSIONS as i64) * 127 * 32767 < i32::MAX as i64);

/// Unit roundoff of f32.
const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
/// Relative error allowed for the f32 dot product the exact scan computes
/// (`n·u / (1 − n·u)` for `n = DIMENSIONS` terms), plus the roundings of the
/// approximate value's scaling (three), doubled for margin.
const ROUNDING: f64 = 2.0
    * ((DIMENSIONS as f64 * UNIT_ROUNDOFF) / (1.0 - DIMENSIONS as f64 * UNIT_ROUNDOFF)
        + 3.0 * UNIT_ROUNDOFF);
/// Absolute margin added to every bound: covers the roundings of computing
/// the bound itself and of adding it to the approximate value in f32.
const MARGIN: f32 = 1e-6;

/// The 8-bit copy of a row-major matrix of `DIMENSIONS`-wide rows.
pub struct QuantizedRows {
    codes: Vec<i8>,
    scales: Vec<f32>,
    /// Per row: `‖r − R‖`, rounded up.
    residuals: Vec<f32>,
    /// Per row: `max(‖r‖, ‖R‖)`, rounded up.
    norms: Vec<f32>,
}

/// One query vector as `i16` codes, with what its bound needs.
pub struct QuantizedQuery {
    codes: Vec<i16>,
    scale: f32,
    /// `‖v − V‖`, rounded up.
    residual: f32,
    /// `max(‖v‖, ‖V‖)`, rounded up.
    norm: f32,
}

/// `value` (a non-negative f64) as an f32 no smaller than it.
fn round_up(value: f64) -> f32 {
    let near = value as f32;
    if (near as f64) < value {
        near.next_up()
    } else {
        near
    }
}

/// Codes of `values` on the grid `scale · k`, `|k| ≤ most`, with the scale,
/// `‖values − decoded‖` and `max(‖values‖, ‖decoded‖)` (both rounded up).
fn quantize<T>(values: &[f32], most: f32, to_code: impl Fn(f32) -> T) -> (Vec<T>, f32, f32, f32)
where
    T: Copy + Into<f64>,
{
    let largest = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    // An all-zero (or non-finite) vector gets codes of zero and a residual of
    // its own norm, which keeps the bound true.
    let scale = if largest > 0.0 && largest.is_finite() {
        largest / most
    } else {
        1.0
    };
    let codes: Vec<T> = values
        .iter()
        .map(|&v| to_code((v / scale).round().clamp(-most, most)))
        .collect();
    let (mut residual, mut norm, mut decoded_norm) = (0.0f64, 0.0f64, 0.0f64);
    for (&v, &code) in values.iter().zip(&codes) {
        let decoded = scale as f64 * code.into();
        residual += (v as f64 - decoded).powi(2);
        norm += (v as f64).powi(2);
        decoded_norm += decoded.powi(2);
    }
    let grow = 1.0 + 1e-9;
    (
        codes,
        scale,
        round_up(residual.sqrt() * grow),
        round_up(norm.sqrt().max(decoded_norm.sqrt()) * grow),
    )
}

impl QuantizedQuery {
    pub fn new(vector: &[f32]) -> QuantizedQuery {
        assert_eq!(vector.len(), DIMENSIONS, "query vector of the wrong width");
        let (codes, scale, residual, norm) = quantize(vector, 32767.0, |c| c as i16);
        QuantizedQuery {
            codes,
            scale,
            residual,
            norm,
        }
    }
}

impl QuantizedRows {
    pub fn new(matrix: &[f32]) -> QuantizedRows {
        let rows = matrix.len() / DIMENSIONS;
        let mut quantized = QuantizedRows {
            codes: Vec::with_capacity(rows * DIMENSIONS),
            scales: Vec::with_capacity(rows),
            residuals: Vec::with_capacity(rows),
            norms: Vec::with_capacity(rows),
        };
        for row in matrix.chunks_exact(DIMENSIONS) {
            let (codes, scale, residual, norm) = quantize(row, 127.0, |c| c as i8);
            quantized.codes.extend_from_slice(&codes);
            quantized.scales.push(scale);
            quantized.residuals.push(residual);
            quantized.norms.push(norm);
        }
        quantized
    }

    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    /// How far the exact f32 similarity of `row` to `query` can be from
    /// the approximate one ([`Self::approximate`]).
    #[inline]
    pub fn bound(&self, row: usize, query: &QuantizedQuery) -> f32 {
        let norms = self.norms[row] * query.norm;
        self.residuals[row] * query.norm
            + self.norms[row] * query.residual
            + ROUNDING as f32 * norms
            + MARGIN
    }

    /// Every row's approximate similarity to every query, `rows × queries`
    /// (row-major). Rows are shared out over [`crate::inference::pool`].
    pub fn approximate(&self, queries: &[QuantizedQuery]) -> Vec<f32> {
        let count = queries.len();
        super::scan::by_row_slices(self.rows(), count, ROWS_PER_ITEM, |range, target| {
            for (block, chunk) in queries.chunks(BLOCK).enumerate() {
                let first = block * BLOCK;
                let rows = range.clone();
                match chunk.len() {
                    1 => self.pass::<1>(rows, chunk, first, count, target),
                    2 => self.pass::<2>(rows, chunk, first, count, target),
                    3 => self.pass::<3>(rows, chunk, first, count, target),
                    4 => self.pass::<4>(rows, chunk, first, count, target),
                    5 => self.pass::<5>(rows, chunk, first, count, target),
                    6 => self.pass::<6>(rows, chunk, first, count, target),
                    7 => self.pass::<7>(rows, chunk, first, count, target),
                    _ => self.pass::<8>(rows, chunk, first, count, target),
                }
            }
        })
    }

    /// `rows` against exactly `Q` queries (numbered from `first`), into
    /// `target` (the slice of the output that starts at `rows.start`).
    #[inline(always)]
    fn pass<const Q: usize>(
        &self,
        rows: std::ops::Range<usize>,
        chunk: &[QuantizedQuery],
        first: usize,
        count: usize,
        target: &mut [f32],
    ) {
        let queries: [&[i16]; Q] = std::array::from_fn(|q| chunk[q].codes.as_slice());
        let codes = &self.codes[rows.start * DIMENSIONS..rows.end * DIMENSIONS];
        let avx2 = has_avx2();
        for (offset, row) in codes.chunks_exact(DIMENSIONS).enumerate() {
            let sums: [i32; Q] = if avx2 {
                // SAFETY: AVX2 was detected; both sides are DIMENSIONS long.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    x86::sums::<Q>(row, &queries)
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!()
            } else {
                portable_sums::<Q>(row, &queries)
            };
            let scale = self.scales[rows.start + offset];
            for (q, sum) in sums.into_iter().enumerate() {
                target[offset * count + first + q] = scale * chunk[q].scale * sum as f32;
            }
        }
    }
}

/// Integer dot products of one row's codes with `Q` queries' codes.
#[inline(always)]
fn portable_sums<const Q: usize>(row: &[i8], queries: &[&[i16]; Q]) -> [i32; Q] {
    std::array::from_fn(|q| {
        row.iter()
            .zip(queries[q])
            .map(|(&r, &v)| r as i32 * v as i32)
            .sum()
    })
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{DIMENSIONS, STEP};
    use std::arch::x86_64::*;

    /// [`super::portable_sums`] with AVX2: sixteen codes of the row widened
    /// to `i16`, multiplied by each query's sixteen and added in pairs
    /// (`madd`) into eight `i32` lanes per query.
    ///
    /// # Safety
    /// The CPU must have AVX2; `row` and every query hold `DIMENSIONS` codes.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sums<const Q: usize>(row: &[i8], queries: &[&[i16]; Q]) -> [i32; Q] {
        debug_assert!(row.len() == DIMENSIONS && queries.iter().all(|q| q.len() == DIMENSIONS));
        let mut lanes = [_mm256_setzero_si256(); Q];
        for step in 0..DIMENSIONS / STEP {
            let codes = _mm_loadu_si128(row.as_ptr().add(step * STEP) as *const __m128i);
            let wide = _mm256_cvtepi8_epi16(codes);
            for q in 0..Q {
                let query =
                    _mm256_loadu_si256(queries[q].as_ptr().add(step * STEP) as *const __m256i);
                lanes[q] = _mm256_add_epi32(lanes[q], _mm256_madd_epi16(wide, query));
            }
        }
        std::array::from_fn(|q| {
            let halves = _mm_add_epi32(
                _mm256_castsi256_si128(lanes[q]),
                _mm256_extracti128_si256(lanes[q], 1),
            );
            let pairs = _mm_add_epi32(halves, _mm_shuffle_epi32(halves, 0b01_00_11_10));
            let one = _mm_add_epi32(pairs, _mm_shuffle_epi32(pairs, 0b10_11_00_01));
            _mm_cvtsi128_si32(one)
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A deterministic pseudo-random unit vector (xorshift).
    pub(crate) fn unit(seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<f32> = (0..DIMENSIONS)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }

    #[test]
    fn approximate_similarities_stay_within_their_bound() {
        // Random rows, rows close to a query (the cases that matter), a row
        // with one large component (a coarse scale) and an all-zero row.
        let mut matrix: Vec<f32> = (0..40).flat_map(unit).collect();
        let query_vectors: Vec<Vec<f32>> = (100..111).map(unit).collect();
        for (i, query) in query_vectors.iter().enumerate() {
            let noise = unit(500 + i as u64);
            let near: Vec<f32> = query
                .iter()
                .zip(&noise)
                .map(|(q, n)| q + 0.05 * n)
                .collect();
            matrix.extend_from_slice(&near);
        }
        let mut spike = vec![0.01f32; DIMENSIONS];
        spike[7] = 1.0;
        matrix.extend_from_slice(&spike);
        matrix.extend_from_slice(&[0.0; DIMENSIONS]);
        let rows = QuantizedRows::new(&matrix);
        let queries: Vec<QuantizedQuery> = query_vectors
            .iter()
            .map(|q| QuantizedQuery::new(q))
            .collect();
        let approximate = rows.approximate(&queries);
        let mut worst = 0.0f32;
        for (row, values) in matrix.chunks_exact(DIMENSIONS).enumerate() {
            for (q, query) in query_vectors.iter().enumerate() {
                let exact = crate::inference::embedder::dot(values, query);
                let approx = approximate[row * queries.len() + q];
                let bound = rows.bound(row, &queries[q]);
                assert!(
                    (exact - approx).abs() <= bound,
                    "row {row} query {q}: exact {exact} approx {approx} bound {bound}"
                );
                // The spike's coarse scale and the zero row are the outliers.
                if row + 2 < rows.rows() {
                    worst = worst.max(bound);
                }
            }
        }
        // The bound is useful: well under the gaps that separate entries.
        assert!(worst < 0.03, "bound {worst}");
    }

    #[test]
    fn the_avx2_kernel_and_the_portable_loop_agree_exactly() {
        let row: Vec<f32> = unit(7);
        let rows = QuantizedRows::new(&row);
        let queries: Vec<QuantizedQuery> = (0..8).map(|q| QuantizedQuery::new(&unit(q))).collect();
        let codes: [&[i16]; 8] = std::array::from_fn(|q| queries[q].codes.as_slice());
        let portable = portable_sums::<8>(&rows.codes, &codes);
        if has_avx2() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 was detected; every slice is DIMENSIONS long.
            let fast = unsafe { x86::sums::<8>(&rows.codes, &codes) };
            #[cfg(target_arch = "x86_64")]
            assert_eq!(fast, portable);
        }
        // Extreme codes do not overflow.
        let most = vec![127i8; DIMENSIONS];
        let query = vec![32767i16; DIMENSIONS];
        let sum = portable_sums::<1>(&most, &[query.as_slice()]);
        assert_eq!(sum[0], 127 * 32767 * DIMENSIONS as i32);
    }
}
