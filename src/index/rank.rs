//! The dense half of a query and the fusion that ranks entries: stored
//! vectors (phrasings and passages), each entry's phrasing mean and the
//! classifier head, scored against a message's vectors, then combined with
//! BM25 into the ranked [`Hit`]s.
//!
//! The scan over every stored vector reads the 8-bit copy
//! ([`super::quantized`]) and keeps, per entry and query vector, an interval
//! that provably holds the exact f32 similarity. Ranking computes each entry's
//! fused score at both ends of its intervals (the fusion only adds, scales by
//! positive weights and takes maxima, so it is monotone, also in f32), takes
//! the `limit`-th best lower end as a threshold, and re-scores exactly, in
//! f32 and in the order of operations of a plain scan, every entry whose
//! upper end reaches it. An entry left out is below at least `limit` entries
//! that were re-scored, so the hits, their scores and their order are bit for
//! bit those of the exact scan; only the work differs.

use super::head::ClassifierHead;
use super::quantized::{QuantizedQuery, QuantizedRows};
use super::scan;
use super::{
    Hit, VectorRole, CENTROID_FLOOR, CENTROID_WEIGHT, HEAD_WEIGHT, LEXICAL_WEIGHT, PASSAGE_WEIGHT,
};
use crate::inference::embedder::{dot, DIMENSIONS};

// Scaling a bound by a negative weight would swap its ends.
const _: () = assert!(PASSAGE_WEIGHT >= 0.0);

/// Where an exact similarity lies: `low ≤ exact ≤ high` (both `-inf` for an
/// entry with nothing to compare).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Interval {
    low: f32,
    high: f32,
}

const NOTHING: Interval = Interval {
    low: f32::NEG_INFINITY,
    high: f32::NEG_INFINITY,
};

impl Interval {
    #[inline]
    fn widen_to(&mut self, other: Interval) {
        self.low = self.low.max(other.low);
        self.high = self.high.max(other.high);
    }
}

/// One query vector's scores against every entry ([`VectorIndex::score`]).
pub struct VectorScores {
    /// The query vector, for re-scoring exactly.
    query: Vec<f32>,
    /// Best weighted cosine to one of the entry's vectors.
    dense: Vec<Interval>,
    /// Cosine to the entry's phrasing mean (`-inf` for entries without one).
    centroid: Vec<Interval>,
    /// The classifier head's probabilities (exact), when there is a head.
    learned: Option<Vec<f32>>,
}

/// The vectors of a knowledge base and what ranking needs of them.
pub(super) struct VectorIndex {
    entries: usize,
    /// Row-major unit vectors, `DIMENSIONS` wide.
    pub(super) vectors: Vec<f32>,
    /// For each vector: the entry it belongs to and what it is.
    pub(super) owners: Vec<(usize, VectorRole)>,
    /// Per entry: its rows of `vectors`, in order.
    entry_rows: Vec<Vec<usize>>,
    /// The entries' phrasing means packed row-major, and per entry its row.
    centroid_rows: Vec<f32>,
    centroid_of: Vec<Option<usize>>,
    quantized_vectors: QuantizedRows,
    quantized_centroids: QuantizedRows,
    /// Logistic regression over the vectors; `None` for a knowledge base
    /// too large to train one quickly.
    head: Option<ClassifierHead>,
}

/// The fused ranking score of one entry (the same expression for the exact
/// value and for both ends of its interval).
#[inline(always)]
fn fused(dense: f32, near: Option<f32>, lexical: f32, learned: f32) -> f32 {
    // The ranking blends each entry's best vector with its phrasings' mean
    // (how well the message fits the owner's ways of asking as a whole);
    // confidence keeps using the best vector alone.
    let ranked = match near {
        Some(near) => {
            (1.0 - CENTROID_WEIGHT) * dense + CENTROID_WEIGHT * near.max(dense - CENTROID_FLOOR)
        }
        None => dense,
    };
    ranked + LEXICAL_WEIGHT * lexical + HEAD_WEIGHT * learned
}

fn weight_of(role: VectorRole) -> f32 {
    match role {
        VectorRole::Phrasing => 1.0,
        VectorRole::Passage => PASSAGE_WEIGHT,
    }
}

impl VectorIndex {
    /// `vectors` row-major with their `owners`; `centroids` per entry (the
    /// normalised phrasing mean, when it has one).
    pub(super) fn new(
        entries: usize,
        vectors: Vec<f32>,
        owners: Vec<(usize, VectorRole)>,
        centroids: &[Option<Vec<f32>>],
        head: Option<ClassifierHead>,
    ) -> VectorIndex {
        let mut entry_rows = vec![Vec::new(); entries];
        for (row, (entry, _)) in owners.iter().enumerate() {
            entry_rows[*entry].push(row);
        }
        let mut centroid_rows = Vec::new();
        let mut centroid_of = vec![None; entries];
        for (entry, centroid) in centroids.iter().enumerate() {
            if let Some(centroid) = centroid {
                centroid_of[entry] = Some(centroid_rows.len() / DIMENSIONS);
                centroid_rows.extend_from_slice(centroid);
            }
        }
        VectorIndex {
            entries,
            quantized_vectors: QuantizedRows::new(&vectors),
            quantized_centroids: QuantizedRows::new(&centroid_rows),
            vectors,
            owners,
            entry_rows,
            centroid_rows,
            centroid_of,
            head,
        }
    }

    fn row(&self, row: usize) -> &[f32] {
        &self.vectors[row * DIMENSIONS..(row + 1) * DIMENSIONS]
    }

    /// One pass over the stored vectors for every query vector: each one's
    /// best similarity to every entry, to its phrasings' mean and the head's
    /// probabilities. A message's searches (the whole message, each sentence)
    /// then combine these instead of scanning again. With `exact`, the f32
    /// scan (the reference the quantized one is checked against); otherwise
    /// the 8-bit scan's intervals.
    pub(super) fn score(&self, query_vectors: &[Vec<f32>], exact: bool) -> Vec<VectorScores> {
        let count = query_vectors.len();
        let mut scored: Vec<VectorScores> = query_vectors
            .iter()
            .map(|query| VectorScores {
                query: query.clone(),
                dense: vec![NOTHING; self.entries],
                centroid: vec![NOTHING; self.entries],
                learned: None,
            })
            .collect();
        if count == 0 {
            return scored;
        }
        let queries: Vec<&[f32]> = query_vectors.iter().map(Vec::as_slice).collect();
        if exact {
            let similarities = scan::similarities(&self.vectors, &queries);
            for (row, values) in similarities.chunks_exact(count).enumerate() {
                let (entry, role) = self.owners[row];
                let weight = weight_of(role);
                for (scores, &similarity) in scored.iter_mut().zip(values) {
                    let similarity = similarity * weight;
                    scores.dense[entry].widen_to(Interval {
                        low: similarity,
                        high: similarity,
                    });
                }
            }
            let similarities = scan::similarities(&self.centroid_rows, &queries);
            for (entry, row) in self.centroids() {
                for (scores, &similarity) in scored.iter_mut().zip(&similarities[row * count..]) {
                    scores.centroid[entry] = Interval {
                        low: similarity,
                        high: similarity,
                    };
                }
            }
        } else {
            let quantized: Vec<QuantizedQuery> =
                queries.iter().map(|q| QuantizedQuery::new(q)).collect();
            let approximate = self.quantized_vectors.approximate(&quantized);
            for (row, values) in approximate.chunks_exact(count).enumerate() {
                let (entry, role) = self.owners[row];
                let weight = weight_of(role);
                for ((scores, &value), query) in scored.iter_mut().zip(values).zip(&quantized) {
                    let bound = self.quantized_vectors.bound(row, query);
                    scores.dense[entry].widen_to(Interval {
                        low: (value - bound) * weight,
                        high: (value + bound) * weight,
                    });
                }
            }
            let approximate = self.quantized_centroids.approximate(&quantized);
            for (entry, row) in self.centroids() {
                let values = &approximate[row * count..(row + 1) * count];
                for ((scores, &value), query) in scored.iter_mut().zip(values).zip(&quantized) {
                    let bound = self.quantized_centroids.bound(row, query);
                    scores.centroid[entry] = Interval {
                        low: value - bound,
                        high: value + bound,
                    };
                }
            }
        }
        if let Some(head) = &self.head {
            for (scores, learned) in scored.iter_mut().zip(head.probabilities_of(&queries)) {
                scores.learned = Some(learned);
            }
        }
        scored
    }

    /// (entry, row of `centroid_rows`) for every entry with a phrasing mean.
    fn centroids(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.centroid_of
            .iter()
            .enumerate()
            .filter_map(|(entry, row)| row.map(|row| (entry, row)))
    }

    /// The best of `scored`'s head probabilities for `entry` (0 without a head).
    #[inline]
    fn learned(scored: &[&VectorScores], entry: usize) -> f32 {
        scored
            .iter()
            .map(|s| s.learned.as_ref().map_or(0.0, |l| l[entry]))
            .fold(0.0, f32::max)
    }

    /// The exact fused score of `entry`, with its exact dense similarity, in
    /// the order of operations of a plain f32 scan; `None` for an entry
    /// without vectors.
    fn exact(&self, entry: usize, scored: &[&VectorScores], lexical: f32) -> Option<Hit> {
        let dense = scored
            .iter()
            .map(|s| {
                let mut best = f32::NEG_INFINITY;
                for &row in &self.entry_rows[entry] {
                    let similarity = dot(self.row(row), &s.query) * weight_of(self.owners[row].1);
                    if similarity > best {
                        best = similarity;
                    }
                }
                best
            })
            .fold(f32::NEG_INFINITY, f32::max);
        if !dense.is_finite() {
            return None;
        }
        let near = self.centroid_of[entry].map(|row| {
            let centroid = &self.centroid_rows[row * DIMENSIONS..(row + 1) * DIMENSIONS];
            scored
                .iter()
                .map(|s| dot(centroid, &s.query))
                .fold(f32::NEG_INFINITY, f32::max)
        });
        Some(Hit {
            entry,
            score: fused(dense, near, lexical, Self::learned(scored, entry)),
            dense,
            lexical,
        })
    }

    /// The best `limit` entries for a message from its vectors' scores (an
    /// entry scores by the best of them) and `lexical` (normalised BM25 per
    /// entry): highest score first, ties in entry order.
    pub(super) fn rank(&self, lexical: &[f32], scored: &[&VectorScores], limit: usize) -> Vec<Hit> {
        if limit == 0 {
            return Vec::new();
        }
        // Both ends of every entry's fused score; the `limit` best lower ends.
        let mut highs = vec![f32::NEG_INFINITY; self.entries];
        let mut lows: Vec<f32> = Vec::with_capacity(limit + 1);
        for entry in 0..self.entries {
            let mut dense = NOTHING;
            for s in scored {
                dense.widen_to(s.dense[entry]);
            }
            if !dense.high.is_finite() {
                continue;
            }
            let near = self.centroid_of[entry].map(|_| {
                let mut near = NOTHING;
                for s in scored {
                    near.widen_to(s.centroid[entry]);
                }
                near
            });
            let learned = Self::learned(scored, entry);
            let low = fused(dense.low, near.map(|n| n.low), lexical[entry], learned);
            highs[entry] = fused(dense.high, near.map(|n| n.high), lexical[entry], learned);
            if lows.len() < limit || low > lows[lows.len() - 1] {
                let at = lows.partition_point(|&l| l >= low);
                lows.insert(at, low);
                lows.truncate(limit);
            }
        }
        // Fewer than `limit` entries: every one is a hit.
        let threshold = if lows.len() == limit {
            lows[limit - 1]
        } else {
            f32::NEG_INFINITY
        };
        let mut hits: Vec<Hit> = highs
            .iter()
            .enumerate()
            .filter(|(_, &high)| high >= threshold && high.is_finite())
            .filter_map(|(entry, _)| self.exact(entry, scored, lexical[entry]))
            .collect();
        // Highest score first, ties in entry order (what a stable sort of the
        // entries gives), but only the first `limit` are put in order.
        let order = |a: &Hit, b: &Hit| b.score.total_cmp(&a.score).then(a.entry.cmp(&b.entry));
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit - 1, order);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(order);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::quantized::tests::unit;

    /// A knowledge base of near-duplicate entries (as generated benchmarks
    /// and real menus have): groups of entries around one direction each,
    /// every entry with a few phrasings and a passage.
    fn clustered(entries: usize) -> (VectorIndex, Vec<Vec<f32>>) {
        let mut vectors = Vec::new();
        let mut owners = Vec::new();
        let mut centroids = Vec::new();
        for entry in 0..entries {
            let base = unit(1 + (entry / 25) as u64);
            let own = unit(10_000 + entry as u64);
            let phrasings = 1 + entry % 4;
            let mut sum = vec![0.0f32; DIMENSIONS];
            for p in 0..=phrasings {
                let noise = unit(50_000 + (entry * 8 + p) as u64);
                let mut v: Vec<f32> = (0..DIMENSIONS)
                    .map(|d| base[d] + 0.15 * own[d] + 0.05 * noise[d])
                    .collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                let role = if p == phrasings {
                    VectorRole::Passage
                } else {
                    sum.iter_mut().zip(&v).for_each(|(s, x)| *s += x);
                    VectorRole::Phrasing
                };
                vectors.extend_from_slice(&v);
                owners.push((entry, role));
            }
            centroids.push((phrasings >= 2).then(|| {
                let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
                sum.iter().map(|x| x / norm).collect::<Vec<f32>>()
            }));
        }
        // Queries near a cluster, near one entry, and anywhere.
        let mut queries = Vec::new();
        for q in 0..12u64 {
            let base = unit(1 + q % 5);
            let own = unit(10_000 + q * 7);
            let noise = unit(90_000 + q);
            let mut v: Vec<f32> = (0..DIMENSIONS)
                .map(|d| base[d] + 0.1 * own[d] + (q as f32 * 0.05) * noise[d])
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            queries.push(v);
        }
        queries.push(unit(123_456));
        let index = VectorIndex::new(entries, vectors, owners, &centroids, None);
        (index, queries)
    }

    /// The ranking the index gave before the 8-bit scan: every entry scored
    /// exactly, all of them sorted.
    fn plain_ranking(
        index: &VectorIndex,
        lexical: &[f32],
        queries: &[Vec<f32>],
        limit: usize,
    ) -> Vec<Hit> {
        let scored = index.score(queries, true);
        let all: Vec<&VectorScores> = scored.iter().collect();
        let mut hits: Vec<Hit> = (0..index.entries)
            .filter_map(|e| index.exact(e, &all, lexical[e]))
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.entry.cmp(&b.entry)));
        hits.truncate(limit);
        hits
    }

    #[test]
    fn the_intervals_hold_the_exact_scores() {
        let (index, queries) = clustered(300);
        let exact = index.score(&queries, true);
        let approximate = index.score(&queries, false);
        for (e, a) in exact.iter().zip(&approximate) {
            for entry in 0..index.entries {
                // The re-scoring reproduces the f32 scan bit for bit.
                let rescored = index.exact(entry, &[e], 0.0).map(|hit| hit.dense);
                assert_eq!(
                    rescored.map(f32::to_bits),
                    Some(e.dense[entry].low.to_bits()).filter(|_| e.dense[entry].low.is_finite())
                );
                let (x, i) = (e.dense[entry].low, a.dense[entry]);
                assert!(i.low <= x && x <= i.high, "dense {entry}: {x} not in {i:?}");
                let (x, i) = (e.centroid[entry].low, a.centroid[entry]);
                assert!(
                    (i.low <= x && x <= i.high) || (x == i.low && x == f32::NEG_INFINITY),
                    "centroid {entry}: {x} not in {i:?}"
                );
            }
        }
    }

    #[test]
    fn the_rescored_ranking_equals_the_exact_scan() {
        let (index, queries) = clustered(400);
        let scored = index.score(&queries, false);
        // BM25 on a few entries, one of them far down the dense ranking.
        let mut lexical = vec![0.0f32; index.entries];
        for (entry, value) in [(3, 1.0), (77, 0.4), (250, 0.9), (399, 0.2)] {
            lexical[entry] = value;
        }
        for limit in [1, 3, 10, 50] {
            // Each query alone, and all of them together (a long message).
            for q in 0..queries.len() {
                let hits = index.rank(&lexical, &[&scored[q]], limit);
                let plain = plain_ranking(&index, &lexical, &queries[q..=q], limit);
                assert_eq!(hits, plain, "query {q}, limit {limit}");
            }
            let all: Vec<&VectorScores> = scored.iter().collect();
            let hits = index.rank(&lexical, &all, limit);
            assert_eq!(hits, plain_ranking(&index, &lexical, &queries, limit));
        }
    }

    #[test]
    fn fewer_entries_than_the_limit_are_all_hits_and_empty_entries_none() {
        let vectors: Vec<f32> = [unit(1), unit(2)].concat();
        let owners = vec![(0, VectorRole::Phrasing), (2, VectorRole::Passage)];
        let index = VectorIndex::new(3, vectors, owners, &[None, None, None], None);
        let queries = vec![unit(3)];
        let scored = index.score(&queries, false);
        let hits = index.rank(&[0.0; 3], &[&scored[0]], 10);
        assert_eq!(hits, plain_ranking(&index, &[0.0; 3], &queries, 10));
        assert_eq!(hits.len(), 2);
        assert!(index.rank(&[0.0; 3], &[&scored[0]], 0).is_empty());
    }
}
