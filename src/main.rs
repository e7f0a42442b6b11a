//! The `frontdesk` binary: parse the command line, call the library, map errors
//! to exit codes (1 for a failed check or command, 2 for usage errors).

use anyhow::Context;
use clap::Parser;
use frontdesk::assistant::policy::{AnswerPolicy, PolicyName};
use frontdesk::cli::{BenchWhat, Cli, Command, ModelsAction, TokenAction};
use frontdesk::knowledge::{KnowledgeBase, Severity};
use frontdesk::startup::{self, Paths};
use std::process::ExitCode;

/// Spins of an idle candle pool thread before it sleeps (candle's default is
/// 25,000). Between two matrix products of one token the serial work (norms,
/// rotations, quantizing the activations) outlasts the default, so the second
/// thread slept and was woken ~150 times per generated token; 1,000,000 spins
/// (tens of milliseconds) keep it awake through a generation. Measured in
/// BENCHMARKS.md ("Generation"): decode 85 → 109 tokens/s at 2 threads.
/// Only for commands that generate: elsewhere (`serve` with the owner's-text
/// policy) a spinning pool thread would take a core from the other answer worker.
const POOL_SPIN_LIMIT: &str = "1000000";

fn generates(command: &Command) -> bool {
    match command {
        Command::Ask { generate, .. } | Command::Eval { generate, .. } => *generate,
        Command::Bench {
            what: BenchWhat::Generate { .. },
        } => true,
        _ => false,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any candle call creates its thread pool; a value the user set wins.
    if generates(&cli.command) && std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", POOL_SPIN_LIMIT);
    }
    // serve logs JSON lines (one span per message) at info; the CLI logs plain
    // warnings. Both to stderr, so stdout stays clean for --json output.
    let filter = |default: &str| {
        tracing_subscriber::EnvFilter::try_from_env("FRONTDESK_LOG")
            .unwrap_or_else(|_| default.into())
    };
    if matches!(cli.command, Command::Serve { .. }) {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter("info"))
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter("warn"))
            .with_writer(std::io::stderr)
            .init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let flags = cli.paths;
    let paths = Paths {
        knowledge: flags
            .knowledge
            .clone()
            .unwrap_or_else(|| "knowledge".into()),
        models: flags.models.clone().unwrap_or_else(|| "models".into()),
        data: flags.data_dir.clone().unwrap_or_else(|| "data".into()),
    };
    match cli.command {
        Command::Check { thresholds } => {
            let code = check(&paths);
            if thresholds && code == ExitCode::SUCCESS {
                let embedder = startup::load_embedder(&paths)?;
                let assistant =
                    startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder)?;
                println!("thresholds: {}", assistant.calibration.describe());
            }
            Ok(code)
        }
        Command::Ask {
            message,
            channel,
            json,
            now,
            generate,
            policy,
        } => {
            let embedder = startup::load_embedder(&paths)?;
            let mut assistant =
                startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder.clone())?;
            if generate {
                assistant.writer = Some(startup::load_writer(&paths, embedder)?);
                assistant.policy = AnswerPolicy::named(policy);
            }
            let sent = match now {
                Some(now) => assistant
                    .local_time(&now)
                    .map_err(|e| anyhow::anyhow!("--now: {e}"))?,
                None => jiff::Timestamp::now(),
            };
            let (outcome, _) = assistant.ask_in_conversation(&message, channel, &[], sent, None)?;
            let decision = &outcome.decision;
            if json {
                println!("{}", outcome.to_ask_json());
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
            now,
            details,
            generate,
            policy,
            limit,
        } => {
            let mut question_list = frontdesk::eval::read_questions(&questions)?;
            if let Some(now) = now {
                if now.parse::<jiff::civil::DateTime>().is_err() {
                    anyhow::bail!("--now: `{now}` is not a local time like 2026-12-24T14:30:00");
                }
                for question in question_list.iter_mut().filter(|q| q.now.is_none()) {
                    question.now = Some(now.clone());
                }
            }
            if let Some(limit) = limit {
                question_list.truncate(limit);
            }
            let started = std::time::Instant::now();
            let embedder = startup::load_embedder(&paths)?;
            let mut assistant =
                startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder.clone())?;
            let generating = generate && !retrieval_only;
            if generating {
                assistant.writer = Some(startup::load_writer(&paths, embedder)?);
                assistant.policy = AnswerPolicy::named(policy);
            }
            let mut report = frontdesk::eval::run(&assistant, &question_list, retrieval_only)?;
            report.thresholds = Some(assistant.calibration.describe());
            if !retrieval_only {
                report.policy = Some(
                    if generating {
                        policy
                    } else {
                        PolicyName::Owner
                    }
                    .to_string(),
                );
            }
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
        Command::Serve { config } => {
            let settings = settings_for(config.as_deref(), &flags)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let application = frontdesk::startup::Application::build(settings, None).await?;
                eprintln!("frontdesk listening on http://{}", application.address());
                tracing::info!(address = %application.address(), "listening");
                application.run_until(shutdown_signal()).await?;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Queue { config, resolve } => {
            let settings = settings_for(config.as_deref(), &flags)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let store = frontdesk::store::Store::connect(&settings.database()).await?;
                if let Some(id) = resolve {
                    store.resolve_queue_item(&id).await?;
                    println!("resolved {id}; the bot answers that conversation again");
                    return anyhow::Ok(());
                }
                let items = store.open_queue().await?;
                let fields = store.open_queue_fields().await?;
                if items.is_empty() {
                    println!("no open items");
                }
                for item in items {
                    let summary = item.summary.replace('\n', " ");
                    println!(
                        "{}  p{} {:<15} {:<9} {}  {summary}",
                        item.id, item.priority, item.reason, item.channel, item.customer
                    );
                    // A completed form's details, one per line.
                    let collected = fields.get(&item.id).and_then(|json| {
                        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
                            .ok()
                    });
                    for (name, value) in collected.into_iter().flatten() {
                        let value = value
                            .as_str()
                            .map(String::from)
                            .unwrap_or_else(|| value.to_string());
                        println!("    {name}: {value}");
                    }
                }
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::SetPassword { config } => {
            let settings = settings_for(config.as_deref(), &flags)?;
            let password = read_password()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                std::fs::create_dir_all(&settings.data_dir)?;
                let store = frontdesk::store::Store::connect(&settings.database()).await?;
                frontdesk::http::auth::set_owner_password(&store, &password).await?;
                anyhow::Ok(())
            })?;
            println!("the owner's password is set; other sessions were signed out");
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { path, config } => {
            let settings = settings_for(config.as_deref(), &flags)?;
            let summary = block_on(frontdesk::backup::backup(&settings, &path))?;
            print_backup_summary("backed up", "into", &summary, &path);
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { path, config } => {
            let settings = settings_for(config.as_deref(), &flags)?;
            let summary = block_on(frontdesk::backup::restore(&settings, &path))?;
            print_backup_summary("restored", "from", &summary, &path);
            Ok(ExitCode::SUCCESS)
        }
        Command::Contact { action, config } => {
            let settings = settings_for(config.as_deref(), &flags)?;
            let done = block_on(frontdesk::privacy::commands::contact(
                &settings,
                &action,
                &mut std::io::stdout(),
            ))?;
            Ok(exit_code(done))
        }
        Command::Retention { action, config } => {
            let settings = settings_for(config.as_deref(), &flags)?;
            let done = block_on(frontdesk::privacy::commands::retention(
                &settings,
                &action,
                &mut std::io::stdout(),
            ))?;
            Ok(exit_code(done))
        }
        Command::Token { action } => {
            let runtime = tokio::runtime::Runtime::new()?;
            match action {
                TokenAction::Create { name, config } => {
                    let settings = settings_for(config.as_deref(), &flags)?;
                    let token = runtime.block_on(async move {
                        std::fs::create_dir_all(&settings.data_dir)?;
                        let store = frontdesk::store::Store::connect(&settings.database()).await?;
                        anyhow::Ok(frontdesk::http::auth::create_api_token(&store, &name).await?)
                    })?;
                    eprintln!("keep it now: it is not shown again");
                    println!("{token}");
                    Ok(ExitCode::SUCCESS)
                }
                TokenAction::Revoke { name, config } => {
                    let settings = settings_for(config.as_deref(), &flags)?;
                    let revoked = runtime.block_on(async move {
                        let store = frontdesk::store::Store::connect(&settings.database()).await?;
                        anyhow::Ok(store.revoke_api_token(&name).await?)
                    })?;
                    if revoked {
                        println!("revoked");
                        Ok(ExitCode::SUCCESS)
                    } else {
                        eprintln!("no live token by that name");
                        Ok(ExitCode::from(1))
                    }
                }
            }
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
            what:
                BenchWhat::Retrieval {
                    entries,
                    no_peer,
                    skip_cold,
                },
        } => {
            frontdesk::bench::retrieval(&paths, entries, !no_peer, !skip_cold)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what: BenchWhat::Reload { edits },
        } => {
            frontdesk::bench::reload(&paths, edits)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                BenchWhat::Generate {
                    threads,
                    no_peer,
                    questions,
                    generate_limit,
                    one_process,
                },
        } => {
            if one_process {
                let report = frontdesk::inference::generator::bench_generate(&paths.models)?;
                println!("{}", serde_json::to_string(&report)?);
            } else {
                frontdesk::bench::generate(
                    &paths,
                    &threads,
                    !no_peer,
                    questions.as_deref(),
                    generate_limit,
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Settings from the file and environment; the global path flags win when given.
/// Runs one command's future to the end on a fresh runtime.
fn block_on<T, E: Into<anyhow::Error>>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    tokio::runtime::Runtime::new()?
        .block_on(future)
        .map_err(Into::into)
}

/// Success, or 1 for a command that ran but could not do what was asked.
fn exit_code(done: bool) -> ExitCode {
    if done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_backup_summary(
    done: &str,
    preposition: &str,
    summary: &frontdesk::backup::Summary,
    path: &std::path::Path,
) {
    println!(
        "{done} {} messages and {} photos {preposition} {}",
        summary.messages,
        summary.attachments,
        path.display()
    );
}

fn settings_for(
    config: Option<&std::path::Path>,
    flags: &frontdesk::cli::PathArgs,
) -> anyhow::Result<frontdesk::config::Settings> {
    let mut settings = frontdesk::config::Settings::load(config)?;
    if let Some(knowledge) = &flags.knowledge {
        settings.knowledge = knowledge.clone();
    }
    if let Some(models) = &flags.models {
        settings.models = models.clone();
    }
    if let Some(data) = &flags.data_dir {
        settings.data_dir = data.clone();
    }
    Ok(settings)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing the messages in hand");
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

/// The new password: the first line of stdin when it is piped, else asked for
/// twice on the terminal with echo off (through `stty`, where there is one).
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let read_line = || -> anyhow::Result<String> {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    if !std::io::stdin().is_terminal() {
        return read_line();
    }
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    echo(false);
    eprint!("new password: ");
    std::io::stderr().flush()?;
    let first = read_line();
    eprint!("\nagain: ");
    std::io::stderr().flush()?;
    let second = read_line();
    echo(true);
    eprintln!();
    let (first, second) = (first?, second?);
    if second != first {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}
