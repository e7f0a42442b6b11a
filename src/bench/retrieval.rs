//! `frontdesk bench retrieval`: embedding throughput against the llama.cpp
//! peer, query latency on the sample knowledge and on a generated
//! 10,000-entry knowledge base, the machine's arithmetic floor, and cold
//! index build time.

use super::percentile;
use crate::domain::Channel;
use crate::index::cache::EmbeddingCache;
use crate::index::Index;
use crate::knowledge::KnowledgeBase;
use crate::startup::{self, Paths, StartupError};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const PRODUCTS: &[&str] = &[
    "sourdough loaf",
    "gift card",
    "birthday cake",
    "oat milk latte",
    "delivery slot",
    "wedding tasting",
    "bike tune-up",
    "brake pads",
    "room booking",
    "yoga class",
    "haircut",
    "oil change",
    "dog grooming",
    "tax return",
    "piano lesson",
    "phone repair",
    "laptop screen",
    "catering tray",
    "dry cleaning",
    "gym membership",
    "flower bouquet",
    "coffee beans",
];
const ASKS: &[&str] = &[
    "How much is the",
    "Do you sell the",
    "Can I book the",
    "Is there a discount on the",
    "How long does the",
    "Can I return the",
    "Do you deliver the",
    "What sizes does the",
    "Is the",
    "When can I pick up the",
];
const TAILS: &[&str] = &[
    "on weekends",
    "for a group",
    "in the evening",
    "for students",
    "with a voucher",
    "this month",
    "near downtown",
    "for seniors",
    "in winter",
    "online",
    "for kids",
    "after 6pm",
    "on holidays",
    "by phone",
    "for businesses",
];

/// Writes a synthetic FAQ folder of `entries` entries with `phrasings` each.
pub fn generate_knowledge(dir: &Path, entries: usize, phrasings: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("business.toml"),
        "name = \"Generated Shop\"\ntimezone = \"UTC\"\n",
    )?;
    let mut faq = String::from("# Generated for benchmarks\n\n");
    for i in 0..entries {
        let product = PRODUCTS[i % PRODUCTS.len()];
        let tail = TAILS[(i / PRODUCTS.len()) % TAILS.len()];
        let variant = i / (PRODUCTS.len() * TAILS.len());
        let _ = writeln!(
            faq,
            "## {} {product} {tail} (option {variant})?",
            ASKS[i % ASKS.len()]
        );
        let others: Vec<String> = (1..phrasings)
            .map(|p| {
                format!(
                    "{} {product} {tail} number {variant} variant {p}",
                    ASKS[(i + p) % ASKS.len()].to_lowercase()
                )
            })
            .collect();
        if !others.is_empty() {
            let _ = writeln!(faq, "Also asked: {}", others.join(" | "));
        }
        let _ = writeln!(
            faq,
            "\nYes, the {product} {tail} is available; option {variant} costs ${}.\n",
            5 + i % 90
        );
    }
    std::fs::write(dir.join("faq.md"), faq)
}

fn peer(sentences: &[String]) -> Option<serde_json::Value> {
    let script = Path::new("bench/peer_embed.py");
    if !script.exists() {
        return None;
    }
    let input = std::env::temp_dir().join("frontdesk-bench-sentences.json");
    std::fs::write(&input, serde_json::to_string(sentences).ok()?).ok()?;
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(&input)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "peer unavailable: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

pub fn retrieval(
    paths: &Paths,
    generated_entries: usize,
    with_peer: bool,
    with_cold_build: bool,
) -> Result<(), StartupError> {
    let load_started = Instant::now();
    let embedder = startup::load_embedder(paths)?;
    println!(
        "embedder load: {:.2} s",
        load_started.elapsed().as_secs_f64()
    );

    // 1. Embedding throughput on the sample knowledge's phrasings.
    let knowledge = KnowledgeBase::load(&paths.knowledge)?;
    let mut sentences: Vec<String> = knowledge
        .entries
        .iter()
        .flat_map(|e| e.phrasings.iter().cloned())
        .collect();
    sentences.truncate(320);
    let single = &sentences[..sentences.len().min(64)];
    // Warm up as the peer does (the thread pool starts on the first product).
    embedder.embed_one(&sentences[0])?;
    let started = Instant::now();
    for sentence in single {
        embedder.embed_one(sentence)?;
    }
    let batch1 = single.len() as f64 / started.elapsed().as_secs_f64();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let started = Instant::now();
    embedder.embed(&refs)?;
    let batch32 = sentences.len() as f64 / started.elapsed().as_secs_f64();
    println!("embedding, our BERT forward (MiniLM): batch 1 {batch1:.1} sentences/s, batch 32 {batch32:.1} sentences/s");
    if with_peer {
        match peer(&sentences) {
            Some(result) => {
                let peer1 = result["batch1"].as_f64().unwrap_or(f64::NAN);
                let peer32 = result["batch32"].as_f64().unwrap_or(f64::NAN);
                println!("embedding, llama.cpp peer: batch 1 {peer1:.1} sentences/s, batch 32 {peer32:.1} sentences/s");
                println!("ratio ours/llama.cpp: batch 1 {:.2}x, batch 32 {:.2}x", batch1 / peer1, batch32 / peer32);
            }
            None => println!("embedding peer: not run (bench/peer_embed.py needs llama-cpp-python; see BENCHMARKS.md)"),
        }
    }

    // 2. Query latency on the sample knowledge.
    let assistant =
        startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder.clone())?;
    let queries: Vec<String> = match crate::eval::read_questions(Path::new("eval/bakery.jsonl")) {
        Ok(questions) => questions.into_iter().map(|q| q.message).take(200).collect(),
        Err(_) => sentences.iter().take(200).cloned().collect(),
    };
    let mut latencies = Vec::new();
    for query in &queries {
        let started = Instant::now();
        assistant.ask(query, Channel::Webchat, &[])?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "query latency, sample knowledge ({} entries, {} queries): p50 {:.1} ms, p95 {:.1} ms",
        assistant.index.knowledge.entries.len(),
        queries.len(),
        percentile(&mut latencies, 50.0),
        percentile(&mut latencies, 95.0)
    );

    let scratch = std::env::temp_dir().join(format!("frontdesk-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    if with_cold_build {
        cold_build(&scratch, &embedder)?;
    }

    // 4. Query latency at `generated_entries` entries (vectors cached under data/cache).
    let big_dir = scratch.join("big");
    generate_knowledge(&big_dir, generated_entries, 2).map_err(|source| StartupError::Cache {
        path: big_dir.display().to_string(),
        source,
    })?;
    let started = Instant::now();
    let big_knowledge = Arc::new(KnowledgeBase::load(&big_dir)?);
    let mut cache =
        EmbeddingCache::open(&paths.cache_dir(), &embedder.fingerprint).map_err(|source| {
            StartupError::Cache {
                path: paths.cache_dir().display().to_string(),
                source,
            }
        })?;
    let big_index = Index::build(big_knowledge, &embedder, &mut cache)?;
    println!(
        "build, {generated_entries} entries: {:.1} s ({} vectors, {} embedded now)",
        started.elapsed().as_secs_f64(),
        big_index.stats.vectors,
        big_index.stats.embedded
    );
    let big = crate::assistant::Assistant::new(big_index, embedder.clone());
    let mut latencies = Vec::new();
    for query in &queries {
        let started = Instant::now();
        big.ask(query, Channel::Webchat, &[])?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let p95 = percentile(&mut latencies, 95.0);
    println!(
        "query latency, {generated_entries} entries: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&mut latencies, 50.0),
        p95
    );
    // The same messages, each embedded alone (the whole message, batch 1).
    let mut embeddings = Vec::new();
    let mut costs = Vec::new();
    let mut same_rankings = 0;
    for query in &queries {
        let expanded = crate::text::expand_shorthand(query);
        let started = Instant::now();
        let vector = embedder.embed_one(&expanded)?;
        embeddings.push(started.elapsed().as_secs_f64() * 1000.0);
        costs.push(embedder.cost(&expanded)?);
        // The 8-bit scan's top 10 against the exact f32 scan's.
        let vectors = [vector];
        let hits = |scored: Vec<crate::index::VectorScores>| {
            big.index.search_scored(&expanded, &[&scored[0]], 10)
        };
        if hits(big.index.score_vectors(&vectors)) == hits(big.index.score_vectors_exact(&vectors))
        {
            same_rankings += 1;
        }
    }
    println!(
        "top 10 of the 8-bit scan equal to the exact f32 scan's (scores included): {same_rankings} of {} messages",
        queries.len()
    );
    let arithmetic = arithmetic_floor(&costs, &embeddings, single, &embedder, 1000.0 / batch1)?;
    let embedding_p95 = percentile(&mut embeddings, 95.0);
    println!(
        "the same messages' batch-1 embedding: p50 {:.1} ms, p95 {embedding_p95:.1} ms; query p95 / embedding p95: {:.2}x",
        percentile(&mut embeddings, 50.0),
        p95 / embedding_p95
    );
    // The physical floor of a query is one batch-1 embedding of the message.
    let one_embedding_ms = 1000.0 / batch1;
    println!(
        "query p95 / one batch-1 embedding ({one_embedding_ms:.1} ms): {:.2}x (target ≤ 2x)",
        p95 / one_embedding_ms
    );
    if let Some(floor_p95) = arithmetic {
        println!(
            "query p95 / the floor's p95 ({floor_p95:.2} ms): {:.2}x",
            p95 / floor_p95
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// The encoder's work on each message against the machine's measured
/// ceilings (same run, as many threads as the kernel pool): its FLOPs at the
/// FMA peak, or its weight bytes at the memory read rate, whichever takes
/// longer, is the least time embedding it alone can take here (the f32
/// weights are larger than the last-level cache, so each pass reads them from
/// memory). Prints it and how close our forward pass comes; returns that
/// floor's p95 over the messages, in ms.
fn arithmetic_floor(
    costs: &[(usize, f64)],
    embedded_ms: &[f64],
    phrasings: &[String],
    embedder: &crate::inference::Embedder,
    phrasing_ms: f64,
) -> Result<Option<f64>, StartupError> {
    use crate::inference::peak;
    let threads = candle_core::utils::get_num_threads();
    let Some(fma) = peak::fma_peak(threads, std::time::Duration::from_millis(400)) else {
        println!("arithmetic floor: not measured (no AVX2 + FMA on this CPU)");
        return Ok(None);
    };
    let bandwidth = peak::read_bandwidth(threads, 256, std::time::Duration::from_millis(400));
    let weight_ms = embedder.weight_bytes() as f64 / bandwidth * 1000.0;
    let floor_ms = |flops: f64| (flops / fma * 1000.0).max(weight_ms);
    let mut floors: Vec<f64> = costs.iter().map(|(_, f)| floor_ms(*f)).collect();
    let mut tokens: Vec<f64> = costs.iter().map(|(t, _)| *t as f64).collect();
    // The slowest twentieth of the messages, by our measured embedding time.
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| embedded_ms[b].total_cmp(&embedded_ms[a]));
    let tail = &order[..costs.len().div_ceil(20)];
    let rate = |flops: f64, ms: f64| flops / ms / 1e6;
    let tail_rate = rate(
        tail.iter().map(|&i| costs[i].1).sum(),
        tail.iter().map(|&i| embedded_ms[i]).sum(),
    );
    let all_rate = rate(costs.iter().map(|(_, f)| f).sum(), embedded_ms.iter().sum());
    let mut phrasing_flops = 0.0;
    for phrasing in phrasings {
        phrasing_flops += embedder.cost(phrasing)?.1;
    }
    phrasing_flops /= phrasings.len().max(1) as f64;
    let phrasing_rate = rate(phrasing_flops, phrasing_ms);
    let floor_p95 = percentile(&mut floors, 95.0);
    let gflops = fma / 1e9;
    println!(
        "ceilings, {threads} threads, same run: FMA peak {gflops:.1} GFLOP/s, memory read {:.1} GB/s ({:.1} MB of f32 weights per pass: {weight_ms:.2} ms); messages p50 {:.0} / p95 {:.0} tokens",
        bandwidth / 1e9,
        embedder.weight_bytes() as f64 / 1e6,
        percentile(&mut tokens, 50.0),
        percentile(&mut tokens, 95.0)
    );
    println!(
        "our encoder: {all_rate:.1} GFLOP/s over all messages ({:.0} % of the FMA peak), {tail_rate:.1} over the slowest 5 % ({:.0} %), {phrasing_rate:.1} on a short phrasing ({:.0} %)",
        100.0 * all_rate / gflops,
        100.0 * tail_rate / gflops,
        100.0 * phrasing_rate / gflops,
    );
    let phrasing_floor = floor_ms(phrasing_flops);
    println!(
        "floor (each message's FLOPs at the peak or its weights at the read rate, the longer): p95 {floor_p95:.2} ms; a short phrasing's {phrasing_floor:.2} ms, measured {phrasing_ms:.1} ms ({:.2}x its floor); floor p95 / phrasing floor {:.2}x",
        phrasing_ms / phrasing_floor,
        floor_p95 / phrasing_floor
    );
    Ok(Some(floor_p95))
}

/// Cold build of 300 entries x 30 phrasings (empty cache), then a one-entry edit.
fn cold_build(
    scratch: &Path,
    embedder: &Arc<crate::inference::Embedder>,
) -> Result<(), StartupError> {
    let cold_dir = scratch.join("cold");
    generate_knowledge(&cold_dir, 300, 30).map_err(|source| StartupError::Cache {
        path: cold_dir.display().to_string(),
        source,
    })?;
    let cache_dir = scratch.join("cache");
    let started = Instant::now();
    let cold = startup::build_assistant(&cold_dir, &cache_dir, embedder.clone())?;
    println!(
        "cold build, 300 entries x 30 phrasings: {:.1} s ({} vectors embedded)",
        started.elapsed().as_secs_f64(),
        cold.index.stats.embedded
    );
    let faq_path = cold_dir.join("faq.md");
    let edited = std::fs::read_to_string(&faq_path)
        .unwrap_or_default()
        .replacen("option 0)?", "option 0, edited)?", 1);
    let _ = std::fs::write(&faq_path, edited);
    let started = Instant::now();
    let warm = startup::build_assistant(&cold_dir, &cache_dir, embedder.clone())?;
    println!(
        "rebuild after editing one entry: {:.2} s ({} vectors embedded, {} from cache)",
        started.elapsed().as_secs_f64(),
        warm.index.stats.embedded,
        warm.index.stats.from_cache
    );

    Ok(())
}
