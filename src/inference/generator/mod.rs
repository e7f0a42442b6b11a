//! Text generation with a llama-family GGUF model (SmolLM2-135M-Instruct by default)
//! through our CPU decoder ([`super::llama`], on candle's quantized kernels): the tokenizer rebuilt from the GGUF metadata,
//! ChatML prompts, greedy or seeded sampling, streaming of decoded text, and stops
//! on end-of-turn, a token budget or a deadline.
//!
//! Loading happens once. Q4_1 and Q8_0 weights are used as shipped (our kernels
//! run both with SIMD); other quantizations are converted to 8 bits at load.
//!
//! A [`Generator`] is shared by reference between threads: the weights are
//! immutable and every call has its own KV cache. The KV cache of a system
//! prompt is kept in a small cache, so calls with the same system block only run
//! the tokens after it.
//!
//! Blocking and CPU-bound: callers on an async runtime must use spawn_blocking.
//! This module never changes the process environment (candle sizes its thread
//! pool from `RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS`, which the binary owns).
//!
//! Here: loading and the generate loop (prefill, sampling, streaming, stops).
//! `gguf.rs` reads the file's metadata and tokenizer, `chat.rs` writes the
//! prompt, `prefix.rs` keeps the system prompts' KV caches, `bench.rs` is
//! `frontdesk bench generate`.

mod bench;
mod chat;
mod gguf;
mod prefix;

pub use bench::{
    bench_generate, greedy_tokens, peak_rss_mb, GenerateBench, PrefixReuse, Speed, BENCH_QUESTION,
    BENCH_SYSTEM,
};
use chat::{chat_format, ChatFormat};
pub(super) use gguf::integer;
pub use gguf::tokenizer_from_gguf;
use gguf::{metadata_string, open_gguf, special_token_texts, stop_tokens};
use prefix::PrefixEntry;

use super::llama::{KvCache, Llama};
use super::models::ModelError;
use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokenizers::Tokenizer;

/// Prompts are fed to the model in slices of this many tokens, so the attention
/// scores of a long prompt never need more than `heads × chunk × context` floats.
const PREFILL_CHUNK: usize = 256;

fn generator_error(what: &str, error: impl std::fmt::Display) -> ModelError {
    ModelError::Load(format!("generator: {what}: {error}"))
}

/// Who wrote a turn of the conversation. The system prompt is passed separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    User,
    Assistant,
}

/// When a call must stop, and how it picks tokens.
#[derive(Debug, Clone)]
pub struct GenerationLimits {
    /// At most this many tokens are generated (fewer if the context fills up).
    pub max_new_tokens: usize,
    /// Wall-clock budget of the whole call, prompt processing included. The token
    /// whose logits are already computed is still emitted when it runs out.
    pub deadline: Duration,
    /// 0.0 picks the most likely token every time (deterministic); above that,
    /// tokens are sampled from the softened distribution.
    pub temperature: f64,
    /// Seed of the sampler, so a sampled reply can be reproduced.
    pub seed: u64,
}

impl Default for GenerationLimits {
    fn default() -> Self {
        GenerationLimits {
            max_new_tokens: 160,
            deadline: Duration::from_secs(30),
            temperature: 0.0,
            seed: 299_792_458,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn (end-of-sequence or `<|im_end|>`).
    Eos,
    /// `max_new_tokens` (or the end of the context window) was reached.
    TokenBudget,
    /// The deadline passed.
    Deadline,
}

/// The result of one [`Generator::generate`] call.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// Exactly the concatenation of the pieces passed to `on_text`.
    pub text: String,
    /// Tokens in the whole prompt, including those served from the prefix cache.
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV cache was reused instead of being computed.
    pub reused_prompt_tokens: usize,
    /// Tokens generated, not counting the end-of-turn token.
    pub generated_tokens: usize,
    /// Tokenizing and processing the prompt, up to the first token's logits.
    pub prompt_ms: f64,
    /// From the first token's logits to the end of the call.
    pub decode_ms: f64,
    pub stop: StopReason,
}

/// What loading cost.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub load_ms: f64,
}

/// Longest context any model gets, whatever it was trained for: the KV cache of
/// one call costs `layers × 2 × kv_width × 4` bytes per token.
const MAX_CONTEXT: usize = 4096;

pub struct Generator {
    /// The weights, shared by every call; each call has its own [`KvCache`].
    model: Llama,
    tokenizer: Tokenizer,
    chat_format: ChatFormat,
    /// Literal text of every special token, removed from prompt content so that
    /// a customer cannot write `<|im_end|>` and forge a turn.
    special_tokens: Vec<String>,
    /// Token ids that end the assistant's turn.
    stop_tokens: Vec<u32>,
    /// Prompt plus reply must fit in this many tokens.
    context_tokens: usize,
    /// Most recently used last.
    prefixes: Mutex<VecDeque<PrefixEntry>>,
    /// Identifies the weights, e.g. for caching replies of one model only.
    pub fingerprint: String,
    pub load_report: LoadReport,
}

/// Options of one call that only benchmarks change.
#[derive(Debug, Clone, Copy)]
struct CallOptions {
    reuse_prefix: bool,
    ignore_eos: bool,
}

impl Generator {
    /// Loads a llama-family GGUF: tokenizer and chat template from its metadata,
    /// then the weights.
    pub fn load(gguf_path: &Path, fingerprint: &str) -> Result<Generator, ModelError> {
        let started = Instant::now();
        let mut reader = open_gguf(gguf_path)?;
        let content = Content::read(&mut reader)
            .map_err(|e| generator_error(&gguf_path.display().to_string(), e))?;
        let architecture = metadata_string(&content, "general.architecture")?;
        if architecture != "llama" {
            return Err(generator_error(
                &gguf_path.display().to_string(),
                format!("architecture `{architecture}` is not supported (llama family only)"),
            ));
        }
        // Everything the model needs from the metadata is taken before
        // `from_gguf` consumes the content.
        let tokenizer = tokenizer_from_gguf(&content)?;
        let chat_format = chat_format(&content)?;
        let special_tokens = special_token_texts(&content)?;
        let stop_tokens = stop_tokens(&content, &tokenizer)?;
        let trained_context = content
            .metadata
            .get("llama.context_length")
            .and_then(integer)
            .unwrap_or(2048) as usize;
        let context_tokens = trained_context.min(MAX_CONTEXT);

        let model = Llama::from_gguf(&content, &mut reader, context_tokens)?;
        Ok(Generator {
            model,
            tokenizer,
            chat_format,
            special_tokens,
            stop_tokens,
            context_tokens,
            prefixes: Mutex::new(VecDeque::new()),
            fingerprint: fingerprint.to_string(),
            load_report: LoadReport {
                load_ms: started.elapsed().as_secs_f64() * 1000.0,
            },
        })
    }

    /// Tokens a prompt plus its reply may use.
    pub fn context_tokens(&self) -> usize {
        self.context_tokens
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`, special tokens recognised, nothing prepended.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        Ok(self
            .tokenizer
            .encode(text, false)
            .map_err(|e| generator_error("tokenize", e))?
            .get_ids()
            .to_vec())
    }

    /// Writes the assistant's next turn. Decoded text is passed to `on_text` as it
    /// is produced, never splitting a multi-byte character.
    pub fn generate(
        &self,
        system: &str,
        turns: &[(ChatRole, &str)],
        limits: &GenerationLimits,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, ModelError> {
        let options = CallOptions {
            reuse_prefix: true,
            ignore_eos: false,
        };
        self.generate_with(system, turns, limits, on_text, options)
    }

    fn generate_with(
        &self,
        system: &str,
        turns: &[(ChatRole, &str)],
        limits: &GenerationLimits,
        on_text: &mut dyn FnMut(&str),
        options: CallOptions,
    ) -> Result<Generation, ModelError> {
        let started = Instant::now();
        let prompt_ids = self.encode(&self.chat_prompt(system, turns))?;
        if prompt_ids.len() >= self.context_tokens {
            return Err(generator_error(
                "prompt",
                format!(
                    "{} tokens leave no room for a reply in the {}-token context",
                    prompt_ids.len(),
                    self.context_tokens
                ),
            ));
        }
        let budget = limits
            .max_new_tokens
            .min(self.context_tokens - prompt_ids.len());
        let mut generation = Generation {
            text: String::new(),
            prompt_tokens: prompt_ids.len(),
            reused_prompt_tokens: 0,
            generated_tokens: 0,
            prompt_ms: 0.0,
            decode_ms: 0.0,
            stop: StopReason::TokenBudget,
        };
        if budget == 0 {
            return Ok(generation);
        }

        let (mut cache, reused) = if options.reuse_prefix {
            self.cache_after_prefix(system, &prompt_ids)?
        } else {
            (self.model.new_cache(), 0)
        };
        let mut logits = self.prefill(&mut cache, &prompt_ids[reused..])?;
        generation.reused_prompt_tokens = reused;
        generation.prompt_ms = started.elapsed().as_secs_f64() * 1000.0;

        let decode_started = Instant::now();
        let temperature = (limits.temperature > 0.0).then_some(limits.temperature);
        let mut sampler = LogitsProcessor::new(limits.seed, temperature, None);
        let mut stream = self.tokenizer.decode_stream(true);
        let mut generated = Vec::with_capacity(budget);
        generation.stop = loop {
            let next = sampler
                .sample(&logits)
                .map_err(|e| generator_error("sampling", e))?;
            if !options.ignore_eos && self.stop_tokens.contains(&next) {
                break StopReason::Eos;
            }
            generated.push(next);
            if let Some(piece) = stream
                .step(next)
                .map_err(|e| generator_error("decode", e))?
            {
                on_text(&piece);
                generation.text.push_str(&piece);
            }
            if generated.len() >= budget {
                break StopReason::TokenBudget;
            }
            if started.elapsed() >= limits.deadline {
                break StopReason::Deadline;
            }
            logits = self.forward(&mut cache, &[next])?;
        };
        // The stream holds back bytes that do not form a whole character yet; the
        // full decode says what, if anything, they became.
        let full_text = self
            .tokenizer
            .decode(&generated, true)
            .map_err(|e| generator_error("decode", e))?;
        if let Some(rest) = full_text.strip_prefix(generation.text.as_str()) {
            if !rest.is_empty() {
                on_text(rest);
                generation.text.push_str(rest);
            }
        }
        generation.generated_tokens = generated.len();
        generation.decode_ms = decode_started.elapsed().as_secs_f64() * 1000.0;
        Ok(generation)
    }

    /// Logits after `tokens`, as a tensor for the sampler.
    fn forward(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Tensor, ModelError> {
        let logits = self.model.forward(cache, tokens)?;
        let count = logits.len();
        Tensor::from_vec(logits, count, &Device::Cpu).map_err(|e| generator_error("logits", e))
    }

    /// Runs `tokens` through the model in chunks and returns the logits after
    /// the last one.
    fn prefill(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Tensor, ModelError> {
        let mut logits = None;
        for chunk in tokens.chunks(PREFILL_CHUNK) {
            logits = Some(self.forward(cache, chunk)?);
        }
        logits.ok_or_else(|| generator_error("prompt", "no tokens to process"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Generator>();
    }
}
