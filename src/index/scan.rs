//! The brute-force part of a query: dot products of a few query vectors
//! against every row of a contiguous, row-major matrix of stored unit vectors.
//!
//! Slices of rows are scanned in parallel. Within a slice each row is read once
//! per block of up to [`BLOCK`] query vectors, and every
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
/// `DIMENSIONS` wide) and every query, rows in order, queries in order.
pub fn for_each_similarity(
    matrix: &[f32],
    queries: &[&[f32]],
    mut visit: impl FnMut(usize, usize, f32),
) {
    let similarities = similarities(matrix, queries);
    for (row, values) in similarities.chunks_exact(queries.len().max(1)).enumerate() {
        for (query, &similarity) in values.iter().enumerate() {
            visit(row, query, similarity);
        }
    }
}

/// Rows of the matrix per work item of the parallel scan.
const ROWS_PER_ITEM: usize = 256;

/// Every row's similarity to every query, `rows × queries` (row-major). The
/// rows are shared out in slices over [`crate::inference::pool`]; each slice
/// is scanned once per block of queries.
pub fn similarities(matrix: &[f32], queries: &[&[f32]]) -> Vec<f32> {
    let rows = matrix.len() / DIMENSIONS;
    let count = queries.len();
    by_row_slices(rows, count, ROWS_PER_ITEM, |range, target| {
        let slice = &matrix[range.start * DIMENSIONS..range.end * DIMENSIONS];
        for (block, chunk) in queries.chunks(BLOCK).enumerate() {
            let first = block * BLOCK;
            let mut store = |row: usize, query: usize, similarity: f32| {
                target[row * count + query] = similarity;
            };
            match chunk.len() {
                1 => pass::<1>(slice, chunk, first, &mut store),
                2 => pass::<2>(slice, chunk, first, &mut store),
                3 => pass::<3>(slice, chunk, first, &mut store),
                4 => pass::<4>(slice, chunk, first, &mut store),
                5 => pass::<5>(slice, chunk, first, &mut store),
                6 => pass::<6>(slice, chunk, first, &mut store),
                7 => pass::<7>(slice, chunk, first, &mut store),
                _ => pass::<8>(slice, chunk, first, &mut store),
            }
        }
    })
}

/// A `rows × count` output (row-major) filled in slices of `rows_per_item`
/// rows over [`crate::inference::pool`]: `fill` gets a range of rows and the
/// part of the output that holds exactly those rows.
pub(crate) fn by_row_slices(
    rows: usize,
    count: usize,
    rows_per_item: usize,
    fill: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut out = vec![0f32; rows * count];
    if count == 0 || rows == 0 {
        return out;
    }
    let out_address = out.as_mut_ptr() as usize;
    crate::inference::pool::for_each(rows.div_ceil(rows_per_item), |items| {
        let first_row = items.start * rows_per_item;
        let last_row = (items.end * rows_per_item).min(rows);
        // SAFETY: the work items' row ranges do not overlap, so each slice
        // is written by one item only, and `out` outlives the call.
        let target = unsafe {
            std::slice::from_raw_parts_mut(
                (out_address as *mut f32).add(first_row * count),
                (last_row - first_row) * count,
            )
        };
        fill(first_row..last_row, target);
    });
    out
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
