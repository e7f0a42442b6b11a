//! `frontdesk bench retrieval`: embedding throughput, query latency on the sample
//! knowledge and on a generated 10,000-entry knowledge base, and cold index build
//! time; with the llama.cpp BERT embedding path (llama-cpp-python, run by
//! `bench/peer_embed.py`) as the named peer in the same run when it is installed.
//!
//! `frontdesk bench reload`: edit-to-live time of the knowledge folder (the
//! watcher, debounce, check, index build and swap) on a scratch copy.
//!
//! `frontdesk bench generate`: the local LLM's decode speed against llama.cpp,
//! and `ask --generate` latency.
//!
//! Each prints a report; none asserts anything. Method and results: BENCHMARKS.md.

mod generate;
mod reload;
mod retrieval;

pub use generate::generate;
pub use reload::reload;
pub use retrieval::{generate_knowledge, retrieval};

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    values[((p / 100.0) * (values.len() - 1) as f64).round() as usize]
}
