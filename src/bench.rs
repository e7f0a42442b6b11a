//! `frontdesk bench retrieval`: embedding throughput, query latency on the sample
//! knowledge and on a generated 10,000-entry knowledge base, and cold index build
//! time; with the llama.cpp BERT embedding path (llama-cpp-python, run by
//! `bench/peer_embed.py`) as the named peer in the same run when it is installed.
//!
//! Prints a report; asserts nothing. Method and results: BENCHMARKS.md.

use crate::domain::Channel;
use crate::index::cache::EmbeddingCache;
use crate::index::Index;
use crate::knowledge::KnowledgeBase;
use crate::startup::{self, Paths, StartupError};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    values[((p / 100.0) * (values.len() - 1) as f64).round() as usize]
}

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
    let started = Instant::now();
    for sentence in single {
        embedder.embed_one(sentence)?;
    }
    let batch1 = single.len() as f64 / started.elapsed().as_secs_f64();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let started = Instant::now();
    embedder.embed(&refs)?;
    let batch32 = sentences.len() as f64 / started.elapsed().as_secs_f64();
    println!("embedding, candle MiniLM: batch 1 {batch1:.1} sentences/s, batch 32 {batch32:.1} sentences/s");
    if with_peer {
        match peer(&sentences) {
            Some(result) => {
                let peer1 = result["batch1"].as_f64().unwrap_or(f64::NAN);
                let peer32 = result["batch32"].as_f64().unwrap_or(f64::NAN);
                println!("embedding, llama.cpp peer: batch 1 {peer1:.1} sentences/s, batch 32 {peer32:.1} sentences/s");
                println!("ratio candle/llama.cpp: batch 1 {:.2}x, batch 32 {:.2}x", batch1 / peer1, batch32 / peer32);
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
    println!(
        "query latency, {generated_entries} entries: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&mut latencies, 50.0),
        percentile(&mut latencies, 95.0)
    );
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
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

/// `frontdesk bench generate`: for each thread count, a child process measures
/// our decoder and candle's `quantized_llama` (candle sizes its thread pool once
/// per process), then llama.cpp runs on the same GGUF and prompt
/// (`bench/peer_generate.py`, when llama-cpp-python is installed), and the
/// ratios are printed. Finally end-to-end `ask` latency over a question set
/// with the generator loaded.
pub fn generate(
    paths: &Paths,
    threads: &[usize],
    with_peer: bool,
    questions: Option<&Path>,
    generate_limit: Option<usize>,
) -> Result<(), StartupError> {
    let (gguf, _) = crate::inference::resolve_generator_file(&paths.models)?;
    let exe = std::env::current_exe().map_err(|source| StartupError::Io {
        what: "current executable".into(),
        source,
    })?;
    let peers = if with_peer {
        generate_peer(&gguf, threads)
    } else {
        Vec::new()
    };
    println!("| threads | what | prompt tok/s | decode tok/s |");
    println!("|---|---|---|---|");
    for &count in threads {
        let output = std::process::Command::new(&exe)
            .args(["--models"])
            .arg(&paths.models)
            .args(["--data-dir"])
            .arg(&paths.data)
            .args(["bench", "generate", "--one-process"])
            .env("CANDLE_NUM_THREADS", count.to_string())
            .env("RAYON_NUM_THREADS", count.to_string())
            .output()
            .map_err(|source| StartupError::Io {
                what: exe.display().to_string(),
                source,
            })?;
        let report: serde_json::Value = match serde_json::from_slice(&output.stdout) {
            Ok(report) => report,
            Err(_) => {
                eprintln!(
                    "{count} thread(s): the measuring process failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                continue;
            }
        };
        let speed = |key: &str| {
            (
                report[key]["prompt_tokens_per_s"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
                report[key]["decode_tokens_per_s"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
            )
        };
        let ours = speed("frontdesk");
        let candle = speed("candle_as_shipped");
        let candle_q8 = speed("candle_q8_0");
        println!(
            "| {count} | frontdesk decoder (Q4_1 as shipped) | {:.1} | {:.1} |",
            ours.0, ours.1
        );
        println!(
            "| {count} | candle quantized_llama (Q4_1 as shipped) | {:.1} | {:.1} |",
            candle.0, candle.1
        );
        println!(
            "| {count} | candle quantized_llama (converted to Q8_0) | {:.1} | {:.1} |",
            candle_q8.0, candle_q8.1
        );
        let peer = peers
            .iter()
            .find(|p| p["threads"].as_u64() == Some(count as u64));
        if let Some(peer) = peer {
            let llama = (
                peer["prompt_tokens_per_s"].as_f64().unwrap_or(f64::NAN),
                peer["decode_tokens_per_s"].as_f64().unwrap_or(f64::NAN),
            );
            println!(
                "| {count} | llama.cpp (same GGUF as shipped) | {:.1} | {:.1} |",
                llama.0, llama.1
            );
            println!(
                "| {count} | **ratio frontdesk / llama.cpp** | {:.2}× | {:.2}× |",
                ours.0 / llama.0,
                ours.1 / llama.1
            );
            if peer["prompt_tokens"].as_u64() != report["prompt_tokens"].as_u64() {
                eprintln!(
                    "warning: the peer's prompt has {} tokens, ours {}",
                    peer["prompt_tokens"], report["prompt_tokens"]
                );
            }
        }
        println!(
            "| {count} | ratio frontdesk / candle (Q8_0, the faster candle) | {:.2}× | {:.2}× |",
            ours.0 / candle_q8.0,
            ours.1 / candle_q8.1
        );
        eprintln!(
            "{count} thread(s): {}",
            serde_json::to_string(&report).unwrap_or_default()
        );
    }
    if with_peer && peers.is_empty() {
        println!("\nllama.cpp peer: not run (bench/peer_generate.py needs llama-cpp-python; see BENCHMARKS.md)");
    }
    if let Some(questions) = questions {
        ask_latency(paths, questions, generate_limit)?;
    }
    Ok(())
}

fn generate_peer(gguf: &Path, threads: &[usize]) -> Vec<serde_json::Value> {
    let script = Path::new("bench/peer_generate.py");
    let mut command = std::process::Command::new("python3");
    command
        .arg(script)
        .arg("--model")
        .arg(gguf)
        .arg("--threads");
    for count in threads {
        command.arg(count.to_string());
    }
    match command.output() {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect(),
        Ok(output) => {
            eprintln!(
                "llama.cpp peer unavailable: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            Vec::new()
        }
        Err(error) => {
            eprintln!("llama.cpp peer unavailable: {error}");
            Vec::new()
        }
    }
}

/// End-to-end `ask` latency over `questions` with the generator loaded: with the
/// default answer policy (what a customer waits for) and with generation for
/// every answer (what a generated reply costs). Model loading excluded.
fn ask_latency(
    paths: &Paths,
    questions: &Path,
    generate_limit: Option<usize>,
) -> Result<(), StartupError> {
    use crate::assistant::policy::{AnswerPolicy, PolicyName};
    let questions = crate::eval::read_questions(questions).map_err(|e| StartupError::Io {
        what: questions.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let embedder = startup::load_embedder(paths)?;
    let mut assistant =
        startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder.clone())?;
    assistant.writer = Some(startup::load_writer(paths, embedder)?);
    for (label, policy, limit) in [
        ("default policy", AnswerPolicy::default(), None),
        (
            "generate every answer",
            AnswerPolicy::named(PolicyName::Always),
            generate_limit,
        ),
    ] {
        assistant.policy = policy;
        let mut totals = Vec::with_capacity(questions.len());
        let mut generated = Vec::new();
        for question in questions.iter().take(limit.unwrap_or(usize::MAX)) {
            let outcome = assistant.ask(&question.message, question.channel, &question.history)?;
            totals.push(outcome.timings.total);
            if outcome.timings.generate > 0.0 {
                generated.push(outcome.timings.generate);
            }
        }
        println!(
            "\nask, {label}, {} questions: end to end p50 {:.0} ms, p95 {:.0} ms",
            totals.len(),
            percentile(&mut totals, 50.0),
            percentile(&mut totals, 95.0)
        );
        if !generated.is_empty() {
            println!(
                "  generation ran for {}: p50 {:.0} ms, p95 {:.0} ms",
                generated.len(),
                percentile(&mut generated, 50.0),
                percentile(&mut generated, 95.0)
            );
        }
    }
    if let Some(rss) = crate::inference::generator::peak_rss_mb() {
        println!("peak resident memory with both models loaded: {rss:.0} MB");
    }
    Ok(())
}
