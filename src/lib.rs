//! frontdesk: a self-hosted, local-AI customer messaging assistant.
//!
//! # Layout
//!
//! A message flows one way: channel → message → store → retrieve → decide →
//! reply or escalate → send. Today's modules, in that order:
//!
//! - [`knowledge`] reads the owner's folder (business.toml, faq.md, menu.toml,
//!   policy `.md` files) into retrievable entries, with `path:line` errors.
//! - [`inference`] holds the local models: the manifest and fetching, the MiniLM
//!   embedder on our own BERT forward pass and f32 kernels, the generator on our
//!   own llama decoder and quantized kernels. Blocking, no async types.
//! - [`index`] builds BM25 (tantivy) and dense vectors (cached on disk by content
//!   hash) over the entries and fuses them into one ranking.
//! - [`assistant`] decides answer or escalate (rules, then retrieval confidence),
//!   writes the reply from the owner's own text, and verifies grounding.
//! - [`eval`] runs question files and computes the metrics of FORMATS.md §3.
//! - [`channels`] is the only code that knows a provider's payloads and
//!   signatures: WhatsApp, Messenger/Instagram, Twilio SMS, Mailgun email.
//! - [`http`] receives webhooks (a bounded number at once, the rest shed with
//!   a 503 by `http::shed`; verify, normalise, persist, acknowledge),
//!   serves the web chat widget and its socket, and the owner's inbox: its
//!   pages, the JSON API under `/api/` (OpenAPI from the handlers), the event
//!   stream, and sign-in (sessions with CSRF tokens, API tokens).
//! - [`store`] is the only place with SQL (SQLite or PostgreSQL): history, the
//!   answer queue with leases, the outbox, the human queue, the event log every
//!   replica streams, notes, accounts, sessions and API tokens.
//! - [`attachments`] keeps the photos customers send: ids and markers at
//!   ingest, the content check (type and magic number) and size cap, files in
//!   the data dir; the answer worker fetches pending ones before answering.
//! - [`pipeline`] workers claim stored messages and run the assistant;
//!   [`delivery`] sends the outbox several at once (one at a time per
//!   conversation), retrying what the provider surely did not take and
//!   reconciling or handing over what it may have (a WhatsApp status naming a
//!   handed-over send settles it later); [`alerts`] texts or emails the
//!   owner when a conversation starts needing her.
//! - [`reload`] serves the knowledge live: the folder is watched, an edit is
//!   checked and re-indexed off the runtime and swapped in; a broken edit keeps
//!   the last good index serving and records its `path:line` errors.
//! - [`privacy`] is the owner's duty toward her customers' data: one person's
//!   export (a zip of every row and photo) and erasure (one transaction, then
//!   the photo files), and the retention setting `serve` applies every hour.
//! - [`config`] reads frontdesk.toml + environment; [`startup`] wires
//!   everything (the CLI commands and `serve`'s [`startup::Application`]).
//! - [`domain`] and [`text`] are the shared vocabulary and small text helpers.
//!
//! `main.rs` only parses the command line ([`cli`]) and calls into these.

pub mod alerts;
pub mod assistant;
pub mod attachments;
pub mod backup;
pub mod bench;
pub mod channels;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod eval;
pub mod http;
pub mod index;
pub mod inference;
pub mod knowledge;
pub mod pipeline;
pub mod privacy;
pub mod reload;
pub mod startup;
pub mod store;
pub mod text;

#[cfg(test)]
mod proptest_support;
