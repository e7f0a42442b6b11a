//! The command line: `check`, `ask`, `eval`, `serve`, the owner's tools
//! (`queue`, `backup`, `contact`, `retention`, `token`), `models fetch`, `bench`.

use crate::assistant::policy::PolicyName;
use crate::domain::Channel;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Local-AI customer messaging assistant for small businesses"
)]
pub struct Cli {
    #[command(flatten)]
    pub paths: PathArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct PathArgs {
    /// Knowledge folder (business.toml, faq.md, menu.toml, ...) [default: knowledge].
    #[arg(long, global = true, env = "FRONTDESK_KNOWLEDGE")]
    pub knowledge: Option<PathBuf>,
    /// Folder with models.toml and the model files [default: models].
    #[arg(long, global = true, env = "FRONTDESK_MODELS_DIR")]
    pub models: Option<PathBuf>,
    /// Data folder (embedding cache, SQLite database) [default: data].
    #[arg(long, global = true, env = "FRONTDESK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the knowledge folder; errors are printed as path:line.
    Check {
        /// Also build the index (loads the embedding model) and print the
        /// answer thresholds calibrated on it, and why.
        #[arg(long)]
        thresholds: bool,
    },
    /// Ask one question as a customer would.
    Ask {
        /// The customer's message.
        message: String,
        #[arg(long, default_value = "webchat")]
        channel: Channel,
        /// Print the FORMATS.md §4 JSON object.
        #[arg(long)]
        json: bool,
        /// When the message is sent, business-local "YYYY-MM-DDTHH:MM:SS" (in
        /// business.toml's time zone) [default: now].
        #[arg(long)]
        now: Option<String>,
        /// Load the local LLM; `--policy` decides which answers it writes (verified;
        /// falls back to the owner's text).
        #[arg(long)]
        generate: bool,
        /// With --generate: where generated replies are used. `measured` (the
        /// per-source-kind policy chosen from the eval sets), `always` (every
        /// answer) or `owner` (none).
        #[arg(long, default_value_t = PolicyName::Measured, requires = "generate")]
        policy: PolicyName,
    },
    /// Run an evaluation question file and report the metrics.
    Eval {
        #[arg(long)]
        questions: PathBuf,
        /// Decide and rank only; write no reply text.
        #[arg(long)]
        retrieval_only: bool,
        /// Print the FORMATS.md §3 JSON object.
        #[arg(long)]
        json: bool,
        /// How many misses to list in the table.
        #[arg(long, default_value_t = 20)]
        misses: usize,
        /// When the messages are sent, business-local "YYYY-MM-DDTHH:MM:SS",
        /// for lines without their own `now` [default: the time of the run].
        #[arg(long)]
        now: Option<String>,
        /// Load the local LLM; `--policy` decides which answers it writes (verified;
        /// falls back to the owner's text). The report then breaks the answers
        /// down by source kind, scoring the owner's text alongside.
        #[arg(long)]
        generate: bool,
        /// With --generate: where generated replies are used. `measured` (the
        /// per-source-kind policy chosen from the eval sets), `always` (every
        /// answer; compare its per-kind table with the owner's-text column) or
        /// `owner` (none).
        #[arg(long, default_value_t = PolicyName::Measured, requires = "generate")]
        policy: PolicyName,
        /// Only the first N questions (generation is slow on 2 cores).
        #[arg(long)]
        limit: Option<usize>,
        /// Also write one JSON line per question (decision, sources, scores) to this file.
        #[arg(long)]
        details: Option<PathBuf>,
    },
    /// Run the service: webhooks in, answers and escalations out.
    Serve {
        /// Settings file (frontdesk.toml); every key can also come from the environment.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The human queue: escalations waiting for a person.
    Queue {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Resolve this item (the bot takes the conversation back).
        #[arg(long)]
        resolve: Option<String>,
    },
    /// Sets the owner's inbox password (read from stdin, or asked for on a terminal).
    SetPassword {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Copy the store and the photos into a new folder while `serve` runs
    /// (SQLite; PostgreSQL is backed up with pg_dump).
    Backup {
        /// A new or empty folder.
        path: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Put a backup folder in place of the store (stop `serve` first; the
    /// current database is kept as frontdesk.db.before-restore-<ms>).
    Restore {
        path: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// One customer's data: find their contact id, export everything stored
    /// about them, or erase it (linked contacts included).
    Contact {
        #[command(subcommand)]
        action: ContactAction,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Delete conversations older than the retention setting now (`serve`
    /// does it every hour while `[retention] days` is set).
    Retention {
        #[command(subcommand)]
        action: RetentionAction,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// API tokens for tools (`Authorization: Bearer …`).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Manage the local models.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Benchmarks with a named peer in the same run.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Fetch every model listed in models/models.toml (verified by sha256).
    Fetch,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Prompt and decode tokens/s of our decoder against candle and llama.cpp
    /// (same GGUF), per thread count; optionally end-to-end `ask` latency.
    Generate {
        /// Thread counts to measure, one process each.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// Skip the llama.cpp peer (llama-cpp-python) even if it is installed.
        #[arg(long)]
        no_peer: bool,
        /// Also measure end-to-end `ask` latency over these questions.
        #[arg(long)]
        questions: Option<PathBuf>,
        /// Generate replies for only the first N of those questions (a generated
        /// reply takes seconds; the default policy runs over all of them).
        #[arg(long)]
        generate_limit: Option<usize>,
        /// Measure at this process's thread count only and print JSON (what the
        /// parent run starts once per thread count).
        #[arg(long, hide = true)]
        one_process: bool,
    },
    /// Query latency (sample + generated 10,000 entries), embedding throughput, cold build.
    Retrieval {
        /// Entries in the generated knowledge base.
        #[arg(long, default_value_t = 10_000)]
        entries: usize,
        /// Skip the llama.cpp peer (llama-cpp-python) even if it can be installed.
        #[arg(long)]
        no_peer: bool,
        /// Skip the cold 300 x 30 build (minutes on 2 cores).
        #[arg(long)]
        skip_cold: bool,
    },
    /// Edit-to-live time of the knowledge folder: copies it to a scratch folder,
    /// serves it with the live watcher, makes N edits and times each from the
    /// file write to the new index being served (warm embedding cache).
    Reload {
        /// How many edits to time.
        #[arg(long, default_value_t = 12)]
        edits: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Creates a token and prints it once, alone on the last line (only its hash is kept).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Revokes a token: it is refused from now on.
    Revoke {
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContactAction {
    /// Contacts whose phone number, email, address or name contains QUERY
    /// (a phone number matches by its digits), with their ids.
    Find { query: String },
    /// Writes a zip of everything stored about the person: contact.json and
    /// the photos they sent.
    Export {
        /// The contact id (`find`, or `contact.id` in the inbox API).
        id: String,
        /// The zip to write (not overwritten) [default: contact-ID.zip].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erases the person: contacts (linked ones included), conversations,
    /// messages, notes, forms, queue items, unsent replies, events, photo files.
    Erase {
        id: String,
        /// Do not ask (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RetentionAction {
    /// Deletes every conversation last active more than DAYS days ago, except
    /// those with an open queue item.
    Apply {
        /// Overrides `[retention] days` for this run.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        days: Option<u32>,
        /// Only say how many conversations would go.
        #[arg(long)]
        dry_run: bool,
    },
}
