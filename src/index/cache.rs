//! Embeddings cached on disk by content hash, so editing one entry re-embeds
//! only the texts that changed. One append-only file per embedding model:
//! records of `sha256(text)` (32 bytes) followed by the vector as little-endian f32.
//! A torn last record (a crash mid-append) is ignored on load.

use crate::inference::embedder::DIMENSIONS;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const RECORD: usize = 32 + DIMENSIONS * 4;

pub type TextHash = [u8; 32];

pub fn hash_text(text: &str) -> TextHash {
    Sha256::digest(text.as_bytes()).into()
}

pub struct EmbeddingCache {
    /// `None` for a cache that lives only in memory (nothing to write to).
    file: Option<PathBuf>,
    vectors: HashMap<TextHash, Vec<f32>>,
    pending: Vec<TextHash>,
}

impl EmbeddingCache {
    pub fn in_memory() -> Self {
        EmbeddingCache {
            file: None,
            vectors: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Opens (or starts) the cache for `fingerprint` under `dir`.
    pub fn open(dir: &Path, fingerprint: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let name = hex::encode(&Sha256::digest(fingerprint.as_bytes())[..8]);
        let file = dir.join(format!("embeddings-{name}.bin"));
        let mut vectors = HashMap::new();
        if let Ok(bytes) = std::fs::read(&file) {
            for record in bytes.chunks_exact(RECORD) {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&record[..32]);
                let vector = record[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                vectors.insert(hash, vector);
            }
            // Drop a torn tail so the next append starts on a record boundary.
            let whole = bytes.len() / RECORD * RECORD;
            if whole != bytes.len() {
                let handle = std::fs::OpenOptions::new().write(true).open(&file)?;
                handle.set_len(whole as u64)?;
            }
        }
        Ok(EmbeddingCache {
            file: Some(file),
            vectors,
            pending: Vec::new(),
        })
    }

    /// The folder the cache lives in (other build products are kept beside it).
    pub fn dir(&self) -> Option<PathBuf> {
        self.file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    pub fn get(&self, hash: &TextHash) -> Option<&Vec<f32>> {
        self.vectors.get(hash)
    }

    pub fn insert(&mut self, hash: TextHash, vector: Vec<f32>) {
        if self.vectors.insert(hash, vector).is_none() {
            self.pending.push(hash);
        }
    }

    /// Appends the vectors added since the last flush.
    pub fn flush(&mut self) -> std::io::Result<()> {
        let Some(path) = &self.file else {
            self.pending.clear();
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut buffer = Vec::with_capacity(self.pending.len() * RECORD);
        for hash in &self.pending {
            buffer.extend_from_slice(hash);
            for value in &self.vectors[hash] {
                buffer.extend_from_slice(&value.to_le_bytes());
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        // Two processes sharing a data dir append whole records, one at a time.
        file.lock()?;
        file.write_all(&buffer)?;
        file.sync_data()?;
        self.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_survive_a_reopen_and_a_torn_tail_is_dropped() {
        let dir = std::env::temp_dir().join(format!("frontdesk-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cache = EmbeddingCache::open(&dir, "model-a").unwrap();
        cache.insert(hash_text("hello"), vec![0.5; DIMENSIONS]);
        cache.flush().unwrap();
        let path = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&[1, 2, 3]).unwrap();
        drop(file);

        let reopened = EmbeddingCache::open(&dir, "model-a").unwrap();
        assert_eq!(reopened.len(), 1);
        assert_eq!(reopened.get(&hash_text("hello")).unwrap()[0], 0.5);
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, RECORD);
        let other_model = EmbeddingCache::open(&dir, "model-b").unwrap();
        assert!(other_model.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
