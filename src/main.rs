//! The `frontdesk` binary: parse the command line, call the library, map errors
//! to exit codes (1 for a failed check or command, 2 for usage errors).

use anyhow::Context;
use clap::Parser;
use frontdesk::cli::{BenchWhat, Cli, Command, ModelsAction};
use frontdesk::knowledge::{KnowledgeBase, Severity};
use frontdesk::startup::{self, Paths};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FRONTDESK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let paths = Paths {
        knowledge: cli.paths.knowledge,
        models: cli.paths.models,
        data: cli.paths.data_dir,
    };
    match cli.command {
        Command::Check => Ok(check(&paths)),
        Command::Ask {
            message,
            channel,
            json,
        } => {
            let embedder = startup::load_embedder(&paths)?;
            let assistant =
                startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder)?;
            let outcome = assistant.ask(&message, channel, &[])?;
            let decision = &outcome.decision;
            if json {
                let value = serde_json::json!({
                    "action": decision.action,
                    "reason": decision.reason,
                    "confidence": (decision.confidence * 1000.0).round() / 1000.0,
                    "reply": outcome.reply,
                    "sources": decision.sources,
                    "timings_ms": outcome.timings,
                });
                println!("{value}");
            } else {
                match decision.reason {
                    Some(reason) => {
                        println!("ESCALATE ({reason}), confidence {:.2}", decision.confidence)
                    }
                    None => println!("ANSWER, confidence {:.2}", decision.confidence),
                }
                println!("\n{}\n", outcome.reply);
                println!(
                    "sources: {}",
                    decision
                        .sources
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!("why: {}", outcome.explanation);
                let t = outcome.timings;
                println!(
                    "timings: retrieve {:.1} ms, generate {:.1} ms, total {:.1} ms",
                    t.retrieve, t.generate, t.total
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            questions,
            retrieval_only,
            json,
            misses,
            details,
        } => {
            let question_list = frontdesk::eval::read_questions(&questions)?;
            let started = std::time::Instant::now();
            let embedder = startup::load_embedder(&paths)?;
            let assistant =
                startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder)?;
            let mut report = frontdesk::eval::run(&assistant, &question_list, retrieval_only)?;
            // Throughput as a user sees it: model load and indexing included.
            let elapsed = started.elapsed().as_secs_f64();
            report.questions_per_second = (report.questions as f64 / elapsed * 10.0).round() / 10.0;
            if let Some(details) = details {
                let lines: Vec<String> = report
                    .results
                    .iter()
                    .map(serde_json::to_string)
                    .collect::<Result<_, _>>()?;
                std::fs::write(&details, lines.join("\n") + "\n")
                    .with_context(|| format!("writing {}", details.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", frontdesk::eval::render_table(&report, misses));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models {
            action: ModelsAction::Fetch,
        } => {
            let store = frontdesk::inference::ModelStore::open(&paths.models)?;
            for spec in &store.models {
                eprintln!("{} ({}) ...", spec.name, spec.role);
                let files = store
                    .resolve(spec)
                    .with_context(|| format!("fetching {}", spec.name))?;
                println!("{}: ready in {}", spec.name, files.dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what: BenchWhat::Retrieval { entries, no_peer },
        } => {
            frontdesk::bench::retrieval(&paths, entries, !no_peer)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(paths: &Paths) -> ExitCode {
    match KnowledgeBase::load(&paths.knowledge) {
        Ok(knowledge) => {
            for warning in &knowledge.warnings {
                eprintln!("{}", prefixed(&paths.knowledge, &warning.to_string()));
            }
            let count = |kind| knowledge.entries.iter().filter(|e| e.kind == kind).count();
            use frontdesk::knowledge::EntryKind::*;
            println!(
                "{}: ok — {} entries ({} FAQ, {} menu items, {} sections, {} from business.toml), {} phrasings, {} warnings",
                paths.knowledge.display(),
                knowledge.entries.len(),
                count(Faq),
                count(MenuItem),
                count(Section),
                count(Business),
                knowledge.entries.iter().map(|e| e.phrasings.len()).sum::<usize>(),
                knowledge.warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            let errors = error
                .issues
                .iter()
                .filter(|i| i.severity == Severity::Error)
                .count();
            for issue in &error.issues {
                eprintln!("{}", prefixed(&paths.knowledge, &issue.to_string()));
            }
            eprintln!(
                "{}: {errors} error(s); fix them and run `frontdesk check` again",
                paths.knowledge.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Issues carry paths relative to the folder; show them as the user typed it.
fn prefixed(root: &std::path::Path, line: &str) -> String {
    format!("{}", root.join(line).display())
}
