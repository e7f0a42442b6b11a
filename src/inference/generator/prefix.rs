//! The KV caches of recent system prompts, so calls with the same system
//! block only run the tokens after it.

use super::chat::{chatml_system_block, ChatFormat};
use super::Generator;
use crate::inference::llama::KvCache;
use crate::inference::models::ModelError;

/// How many system prompts keep their KV cache. One entry costs about
/// `layers × 2 × kv_width × 4` bytes per token: 46 KB per token for SmolLM2-135M,
/// so four 300-token system prompts hold about 55 MB.
const PREFIX_CACHE_ENTRIES: usize = 4;

/// A system prompt with its KV cache already computed.
pub(super) struct PrefixEntry {
    system: String,
    tokens: Vec<u32>,
    cache: KvCache,
}

impl Generator {
    /// Computes and keeps the KV cache of the system block for `system`, so the
    /// next calls with this system prompt skip it. Returns its length in tokens.
    pub fn prefill_prefix(&self, system: &str) -> Result<usize, ModelError> {
        if let Some(entry) = self.cached_prefix(system) {
            return Ok(entry.0.len());
        }
        let (tokens, _) = self.compute_prefix(system)?;
        Ok(tokens.len())
    }

    /// A KV cache that already holds the system block of `prompt_ids`, and the
    /// number of tokens it covers (0 when none fits).
    pub(super) fn cache_after_prefix(
        &self,
        system: &str,
        prompt_ids: &[u32],
    ) -> Result<(KvCache, usize), ModelError> {
        let (tokens, cache) = match self.cached_prefix(system) {
            Some(found) => found,
            None => self.compute_prefix(system)?,
        };
        // At least one prompt token must run so that there are logits to sample.
        if tokens.len() < prompt_ids.len() && prompt_ids.starts_with(&tokens) {
            Ok((cache, tokens.len()))
        } else {
            Ok((self.model.new_cache(), 0))
        }
    }

    fn cached_prefix(&self, system: &str) -> Option<(Vec<u32>, KvCache)> {
        let mut prefixes = self.prefixes.lock().unwrap_or_else(|p| p.into_inner());
        let position = prefixes.iter().position(|e| e.system == system)?;
        let entry = prefixes.remove(position)?;
        let found = (entry.tokens.clone(), entry.cache.clone());
        prefixes.push_back(entry);
        Some(found)
    }

    fn compute_prefix(&self, system: &str) -> Result<(Vec<u32>, KvCache), ModelError> {
        let block = match self.chat_format {
            ChatFormat::ChatMl => chatml_system_block(&self.clean(system)),
        };
        let tokens = self.encode(&block)?;
        let mut cache = self.model.new_cache();
        self.prefill(&mut cache, &tokens)?;
        let mut prefixes = self.prefixes.lock().unwrap_or_else(|p| p.into_inner());
        prefixes.retain(|e| e.system != system);
        if prefixes.len() >= PREFIX_CACHE_ENTRIES {
            prefixes.pop_front();
        }
        prefixes.push_back(PrefixEntry {
            system: system.to_string(),
            tokens: tokens.clone(),
            cache: cache.clone(),
        });
        Ok((tokens, cache))
    }
}
