//! Retrieval over a loaded knowledge base: BM25 ([`lexical`]), dense vectors of
//! every phrasing and passage (MiniLM, cached on disk by content hash: [`cache`]),
//! and their fusion into one ranked list of entries.
//!
//! Building embeds only texts the cache has not seen. Searching is read-only and
//! can be shared between threads.

pub mod cache;
pub mod head;
pub mod lexical;
mod quantized;
mod rank;
pub mod scan;

use crate::inference::embedder::{Embedder, DIMENSIONS};
use crate::inference::ModelError;
use crate::knowledge::{Entry, EntryKind, KnowledgeBase};
use cache::{hash_text, EmbeddingCache};
use head::ClassifierHead;
use lexical::LexicalIndex;
use rank::VectorIndex;
pub use rank::VectorScores;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("embedding failed: {0}")]
    Model(#[from] ModelError),
    #[error("lexical index: {0}")]
    Lexical(#[from] tantivy::TantivyError),
    #[error("embedding cache: {0}")]
    Cache(#[from] std::io::Error),
}

/// What a stored vector stands for: a way of asking (phrasing) or answer text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VectorRole {
    Phrasing,
    Passage,
}

/// Weight of a match against answer text relative to a match against a phrasing:
/// a question resembles other questions more than it resembles answers.
const PASSAGE_WEIGHT: f32 = 1.0;
/// Weight of normalised BM25 in the fused score ("lightly weighted sum").
const LEXICAL_WEIGHT: f32 = 0.2;
/// Share of an entry's ranking score taken from its phrasings' mean vector,
/// chosen across the three sample businesses (eval/README.md).
const CENTROID_WEIGHT: f32 = 0.2;
/// The mean counts at most this far below the entry's best vector, so one
/// off-topic phrasing in an entry does not bury it.
const CENTROID_FLOOR: f32 = 0.2;
/// Weight of the classifier head's probability in the ranking score, chosen
/// across the three sample businesses (eval/README.md): it reorders close
/// candidates and cannot lift a poor match past a good one.
const HEAD_WEIGHT: f32 = 0.2;
/// How many candidates each retriever hands to fusion.
const CANDIDATES: usize = 50;

/// One ranked entry with the evidence behind its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub entry: usize,
    /// Fused score used for ranking.
    pub score: f32,
    /// Best cosine similarity of the message to one of the entry's vectors (weighted).
    pub dense: f32,
    /// BM25 score divided by the best BM25 score of this query (0 when absent).
    pub lexical: f32,
}

/// One held-out phrasing's best similarity to the rest of its own entry and
/// to any other entry ([`Index::held_out`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOut {
    pub own: f32,
    pub other: f32,
}

/// Build statistics, for logs and `check`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildStats {
    pub entries: usize,
    pub vectors: usize,
    pub embedded: usize,
    pub from_cache: usize,
}

pub struct Index {
    pub knowledge: Arc<KnowledgeBase>,
    lexical: LexicalIndex,
    /// Every stored vector, the entries' phrasing means and the classifier
    /// head, with the 8-bit copies the query scan reads ([`rank`]).
    dense: VectorIndex,
    /// Stems of every word in the knowledge, to tell which words of a message
    /// the business never mentions.
    vocabulary: std::collections::HashSet<String>,
    /// The same stems grouped by their number of characters, so the typo
    /// allowance compares a word only with stems one character shorter,
    /// as long, or one longer (no others can be one edit away).
    vocabulary_by_length: Vec<Vec<String>>,
    /// forms.toml phrasings (not retrievable entries): (form index, unit vector).
    form_vectors: Vec<(usize, Vec<f32>)>,
    pub stats: BuildStats,
}

/// The texts embedded for one entry.
fn texts_of(entry: &Entry) -> Vec<(String, VectorRole)> {
    let mut texts: Vec<(String, VectorRole)> = entry
        .phrasings
        .iter()
        .map(|p| (p.clone(), VectorRole::Phrasing))
        .collect();

    let passages: Vec<String> = match entry.kind {
        EntryKind::MenuItem | EntryKind::Business => vec![entry.answer.clone()],
        EntryKind::Faq | EntryKind::Section => {
            let mut passages = chunk_passage(&entry.answer);
            if entry.kind == EntryKind::Section {
                let prefix = entry.context.as_deref().unwrap_or("");
                for passage in &mut passages {
                    *passage = format!("{prefix} {}: {passage}", entry.title)
                        .trim()
                        .to_string();
                }
            }
            passages
        }
    };
    texts.extend(
        passages
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| (p, VectorRole::Passage)),
    );
    texts
}

/// Each entry's normalised mean phrasing vector (entries with two or more phrasings).
fn centroids_of(
    entries: usize,
    vectors: &[f32],
    owners: &[(usize, VectorRole)],
) -> Vec<Option<Vec<f32>>> {
    let mut sums = vec![vec![0.0f32; DIMENSIONS]; entries];
    let mut counts = vec![0usize; entries];
    for (row, (entry, role)) in vectors.chunks_exact(DIMENSIONS).zip(owners) {
        if *role != VectorRole::Phrasing {
            continue;
        }
        counts[*entry] += 1;
        for (sum, value) in sums[*entry].iter_mut().zip(row) {
            *sum += value;
        }
    }
    sums.into_iter()
        .zip(counts)
        .map(|(mut sum, count)| {
            if count < 2 {
                return None;
            }
            let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm == 0.0 {
                return None;
            }
            sum.iter_mut().for_each(|v| *v /= norm);
            Some(sum)
        })
        .collect()
}

/// Splits answer text into passages of about 60 words on sentence boundaries.
fn chunk_passage(text: &str) -> Vec<String> {
    const WORDS: usize = 60;
    let mut passages = Vec::new();
    let mut current = String::new();
    for sentence in crate::text::sentences(text) {
        if !current.is_empty()
            && current.split_whitespace().count() + sentence.split_whitespace().count() > WORDS
        {
            passages.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(sentence.trim());
    }
    if !current.trim().is_empty() {
        passages.push(current);
    }
    passages
}

impl Index {
    pub fn build(
        knowledge: Arc<KnowledgeBase>,
        embedder: &Embedder,
        cache: &mut EmbeddingCache,
    ) -> Result<Index, IndexError> {
        let lexical = LexicalIndex::build(&knowledge.entries)?;
        let mut owners = Vec::new();
        let mut hashes = Vec::new();
        let mut missing: Vec<(cache::TextHash, String)> = Vec::new();
        let mut queued = std::collections::HashSet::new();
        for (position, entry) in knowledge.entries.iter().enumerate() {
            for (text, role) in texts_of(entry) {
                let hash = hash_text(&text);
                if cache.get(&hash).is_none() && queued.insert(hash) {
                    missing.push((hash, text));
                }
                owners.push((position, role));
                hashes.push(hash);
            }
        }
        let mut form_hashes = Vec::new();
        for (position, form) in knowledge.forms.iter().enumerate() {
            for phrasing in &form.phrasings {
                let hash = hash_text(phrasing);
                if cache.get(&hash).is_none() && queued.insert(hash) {
                    missing.push((hash, phrasing.clone()));
                }
                form_hashes.push((position, hash));
            }
        }
        let missing_texts: Vec<&str> = missing.iter().map(|(_, t)| t.as_str()).collect();
        let fresh = embedder.embed(&missing_texts)?;
        let embedded = fresh.len();
        for ((hash, _), vector) in missing.into_iter().zip(fresh) {
            cache.insert(hash, vector);
        }
        cache.flush()?;
        let mut vectors = Vec::with_capacity(hashes.len() * DIMENSIONS);
        for hash in &hashes {
            vectors.extend_from_slice(cache.get(hash).expect("every text was embedded or cached"));
        }
        let form_vectors = form_hashes
            .iter()
            .map(|(form, hash)| {
                let vector = cache
                    .get(hash)
                    .expect("every form phrasing was embedded or cached");
                (*form, vector.to_vec())
            })
            .collect();
        // Form phrasings are embedded through the same cache: count them too.
        let vectors_total = hashes.len() + form_hashes.len();
        let stats = BuildStats {
            entries: knowledge.entries.len(),
            vectors: vectors_total,
            embedded,
            from_cache: vectors_total.saturating_sub(embedded),
        };
        let mut vocabulary = std::collections::HashSet::new();
        for entry in &knowledge.entries {
            let texts = entry
                .phrasings
                .iter()
                .chain([&entry.answer, &entry.title])
                .chain(entry.context.iter());
            for text in texts {
                vocabulary.extend(
                    crate::text::words(&crate::text::expand_shorthand(text))
                        .iter()
                        .map(|w| crate::text::stem(w)),
                );
            }
        }
        let mut vocabulary_by_length: Vec<Vec<String>> = Vec::new();
        for stem in &vocabulary {
            let length = stem.chars().count();
            if vocabulary_by_length.len() <= length {
                vocabulary_by_length.resize(length + 1, Vec::new());
            }
            vocabulary_by_length[length].push(stem.clone());
        }
        // Per entry: the normalised mean of its phrasing vectors (a nearest-mean
        // classifier over the owner's ways of asking), when it has two or more.
        let centroids = centroids_of(knowledge.entries.len(), &vectors, &owners);
        // Logistic regression over the vectors (entry per vector), a ranking
        // signal; `None` for a knowledge base too large to train one quickly.
        let labels: Vec<usize> = owners.iter().map(|(entry, _)| *entry).collect();
        let head = ClassifierHead::train_cached(
            &vectors,
            &labels,
            knowledge.entries.len(),
            cache.dir().as_deref(),
        );
        let dense = VectorIndex::new(knowledge.entries.len(), vectors, owners, &centroids, head);
        Ok(Index {
            knowledge,
            lexical,
            dense,
            vocabulary,
            vocabulary_by_length,
            form_vectors,
            stats,
        })
    }

    /// Share of the message's topic words that the knowledge never mentions
    /// (allowing one typo in words of five letters or more), in [0, 1].
    pub fn unknown_share(&self, message: &str) -> f32 {
        let words = crate::text::content_words(message);
        if words.is_empty() {
            return 0.0;
        }
        let unknown = words
            .iter()
            .filter(|word| {
                let stem = crate::text::stem(word);
                if self.vocabulary.contains(&stem) || self.vocabulary.contains(word.as_str()) {
                    return false;
                }
                let length = stem.chars().count();
                !(word.chars().count() >= 5
                    && self
                        .vocabulary_by_length
                        .iter()
                        .take(length + 2)
                        .skip(length.saturating_sub(1))
                        .flatten()
                        .any(|known| crate::text::within_one_edit(known, &stem)))
            })
            .count();
        unknown as f32 / words.len() as f32
    }

    /// Leave-one-phrasing-out: up to `limit` phrasings, evenly spaced through
    /// the index, each scored as if a customer had sent it against every other
    /// vector. Only phrasings whose entry keeps another vector are taken.
    /// Deterministic (no randomness); cost is `limit × vectors` dot products.
    pub fn held_out(&self, limit: usize) -> Vec<HeldOut> {
        let mut per_entry = vec![0usize; self.knowledge.entries.len()];
        for (entry, _) in &self.dense.owners {
            per_entry[*entry] += 1;
        }
        let candidates: Vec<usize> = self
            .dense
            .owners
            .iter()
            .enumerate()
            .filter(|(_, (entry, role))| *role == VectorRole::Phrasing && per_entry[*entry] >= 2)
            .map(|(row, _)| row)
            .collect();
        let step = (candidates.len() as f64 / limit.max(1) as f64).max(1.0);
        let mut picked = Vec::new();
        let mut at = 0.0f64;
        while (at as usize) < candidates.len() && picked.len() < limit {
            picked.push(candidates[at as usize]);
            at += step;
        }
        let rows: Vec<&[f32]> = self.dense.vectors.chunks_exact(DIMENSIONS).collect();
        picked
            .into_iter()
            .map(|held| {
                let own_entry = self.dense.owners[held].0;
                let query = rows[held];
                let mut best_own = f32::NEG_INFINITY;
                let mut best_other = f32::NEG_INFINITY;
                for (row, vector) in rows.iter().enumerate() {
                    if row == held {
                        continue;
                    }
                    let similarity = crate::inference::embedder::cosine(vector, query);
                    if self.dense.owners[row].0 == own_entry {
                        best_own = best_own.max(similarity);
                    } else {
                        best_other = best_other.max(similarity);
                    }
                }
                HeldOut {
                    own: best_own,
                    other: best_other,
                }
            })
            .collect()
    }

    pub fn entry(&self, hit: &Hit) -> &Entry {
        &self.knowledge.entries[hit.entry]
    }

    /// Ranks entries for a message. `query_vectors` are unit vectors of the whole
    /// message and of its parts (each sentence of a long message); an entry scores
    /// by its best vector against the best of them.
    /// The form whose phrasing is closest to any of the query vectors, with
    /// that cosine similarity.
    pub fn best_form(&self, query_vectors: &[Vec<f32>]) -> Option<(usize, f32)> {
        let mut best: Option<(usize, f32)> = None;
        for (form, vector) in &self.form_vectors {
            for query in query_vectors {
                let similarity = crate::inference::embedder::cosine(vector, query);
                if best.is_none_or(|(_, b)| similarity > b) {
                    best = Some((*form, similarity));
                }
            }
        }
        best
    }

    pub fn search(&self, query_text: &str, query_vectors: &[Vec<f32>], limit: usize) -> Vec<Hit> {
        let scored = self.score_vectors(query_vectors);
        let all: Vec<&VectorScores> = scored.iter().collect();
        self.search_scored(query_text, &all, limit)
    }

    /// One pass over the stored vectors for every query vector: each one's
    /// best similarity to every entry, to its phrasings' mean and the head's
    /// probabilities (as intervals from the 8-bit scan, [`rank`]). A
    /// message's searches (the whole message, each sentence) then combine
    /// these instead of scanning again.
    pub fn score_vectors(&self, query_vectors: &[Vec<f32>]) -> Vec<VectorScores> {
        self.dense.score(query_vectors, false)
    }

    /// [`Index::score_vectors`] by the exact f32 scan: the reference the
    /// 8-bit scan's rankings are checked against (`bench retrieval`).
    pub fn score_vectors_exact(&self, query_vectors: &[Vec<f32>]) -> Vec<VectorScores> {
        self.dense.score(query_vectors, true)
    }

    /// The BM25 evidence of one text for [`Index::search_with`]: its best
    /// entries' scores divided by the best one's.
    pub fn lexical_scores(&self, query_text: &str) -> LexicalScores {
        let hits = self.lexical.search(query_text, CANDIDATES);
        let best = hits.first().map(|(_, s)| *s).unwrap_or(0.0);
        LexicalScores {
            hits: if best > 0.0 {
                hits.into_iter().map(|(e, s)| (e, s / best)).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Ranks entries for a message from its vectors' scores
    /// ([`Index::score_vectors`]): an entry scores by the best of them.
    pub fn search_scored(
        &self,
        query_text: &str,
        scored: &[&VectorScores],
        limit: usize,
    ) -> Vec<Hit> {
        self.search_with(&self.lexical_scores(query_text), scored, limit)
    }

    /// [`Index::search_scored`] with the text's BM25 already looked up (a
    /// message's searches reuse it).
    pub fn search_with(
        &self,
        lexical: &LexicalScores,
        scored: &[&VectorScores],
        limit: usize,
    ) -> Vec<Hit> {
        let mut per_entry = vec![0.0f32; self.knowledge.entries.len()];
        for &(entry, score) in &lexical.hits {
            per_entry[entry] = score;
        }
        self.dense.rank(&per_entry, scored, limit)
    }
}

/// One text's normalised BM25 scores ([`Index::lexical_scores`]).
pub struct LexicalScores {
    hits: Vec<(usize, f32)>,
}
