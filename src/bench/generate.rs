//! `frontdesk bench generate`: the local LLM's decode speed against
//! llama.cpp (`bench/peer_generate.py`) and `ask --generate` latency.

use super::percentile;
use crate::startup::{self, Paths, StartupError};
use std::path::Path;

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
