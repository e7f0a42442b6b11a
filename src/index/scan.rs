//! The brute-force part of a query: dot products of a few query vectors
//! against every row of a contiguous, row-major matrix of stored unit vectors.
//!
//! Each row is read once per block of up to [`BLOCK`] query vectors, and every
//! query in the block keeps its own eight partial sums, so the additions of
//! different queries do not wait on each other and the compiler keeps them in
//! SIMD registers. Per query the arithmetic is exactly that of
//! [`crate::inference::embedder::dot`] (same lanes, same order of additions),
//! so the similarities, and therefore the rankings, are bit for bit the ones a
//! row-at-a-time scan gives.

use crate::inference::embedder::DIMENSIONS;

/// Query vectors handled in one pass over the rows.
const BLOCK: usize = 8;
const LANES: usize = 8;
const _: () = assert!(DIMENSIONS.is_multiple_of(LANES));

/// Calls `visit(row, query, similarity)` for every row of `matrix` (row-major,
/// `DIMENSIONS` wide) and every query, rows in order, queries in order within
/// a block.
pub fn for_each_similarity(
    matrix: &[f32],
    queries: &[&[f32]],
    mut visit: impl FnMut(usize, usize, f32),
) {
    for (block, chunk) in queries.chunks(BLOCK).enumerate() {
        let first = block * BLOCK;
        match chunk.len() {
            1 => pass::<1>(matrix, chunk, first, &mut visit),
            2 => pass::<2>(matrix, chunk, first, &mut visit),
            3 => pass::<3>(matrix, chunk, first, &mut visit),
            4 => pass::<4>(matrix, chunk, first, &mut visit),
            5 => pass::<5>(matrix, chunk, first, &mut visit),
            6 => pass::<6>(matrix, chunk, first, &mut visit),
            7 => pass::<7>(matrix, chunk, first, &mut visit),
            _ => pass::<8>(matrix, chunk, first, &mut visit),
        }
    }
}

/// One pass over the rows for exactly `Q` queries.
#[inline(always)]
fn pass<const Q: usize>(
    matrix: &[f32],
    chunk: &[&[f32]],
    first: usize,
    visit: &mut impl FnMut(usize, usize, f32),
) {
    let queries: [&[f32]; Q] = std::array::from_fn(|q| {
        assert_eq!(
            chunk[q].len(),
            DIMENSIONS,
            "query vector of the wrong width"
        );
        chunk[q]
    });
    for (row, values) in matrix.chunks_exact(DIMENSIONS).enumerate() {
        let similarities = block_dot::<Q>(values, &queries);
        for (q, similarity) in similarities.into_iter().enumerate() {
            visit(row, first + q, similarity);
        }
    }
}

#[inline(always)]
fn block_dot<const Q: usize>(row: &[f32], queries: &[&[f32]; Q]) -> [f32; Q] {
    let mut lanes = [[0.0f32; LANES]; Q];
    for c in 0..DIMENSIONS / LANES {
        let r: &[f32; LANES] = row[c * LANES..(c + 1) * LANES].try_into().unwrap();
        for q in 0..Q {
            let v: &[f32; LANES] = queries[q][c * LANES..(c + 1) * LANES].try_into().unwrap();
            for lane in 0..LANES {
                lanes[q][lane] += r[lane] * v[lane];
            }
        }
    }
    // The same reduction as `embedder::dot`: the lanes summed in order, then
    // the (here empty) tail added.
    let tail: f32 = [0.0f32; 0].iter().sum();
    std::array::from_fn(|q| lanes[q].iter().sum::<f32>() + tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_size_matches_the_plain_dot_product_bit_for_bit() {
        let rows = 37;
        let matrix: Vec<f32> = (0..rows * DIMENSIONS)
            .map(|i| ((i as f32) * 0.731).sin())
            .collect();
        for count in 1..=19 {
            let queries: Vec<Vec<f32>> = (0..count)
                .map(|q| {
                    (0..DIMENSIONS)
                        .map(|i| ((i * (q + 3)) as f32 * 0.173).cos())
                        .collect()
                })
                .collect();
            let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
            let mut seen = vec![vec![f32::NAN; count]; rows];
            for_each_similarity(&matrix, &refs, |row, q, s| seen[row][q] = s);
            for (row, values) in matrix.chunks_exact(DIMENSIONS).enumerate() {
                for (q, query) in queries.iter().enumerate() {
                    let plain = crate::inference::embedder::dot(values, query);
                    assert_eq!(
                        seen[row][q].to_bits(),
                        plain.to_bits(),
                        "row {row} query {q}"
                    );
                }
            }
        }
    }
}
