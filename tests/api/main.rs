//! One integration test binary: the real `frontdesk` binary and library with the
//! real models and the shipped knowledge folders.

mod helpers;

mod alerts;
mod ask;
mod backup;
mod body_budget;
mod check;
mod contacts;
mod crash;
mod db_outage;
mod decoder;
mod disk_full;
mod embedder;
mod eval;
mod faults;
mod flood;
mod forms;
mod generator;
mod hostile;
mod hours;
mod inbox_api;
mod inbox_browser;
mod ingest_batch;
mod live_reload;
mod outage;
mod outage_bench;
mod photos;
mod reindex;
mod serve;
mod serve_helpers;
mod serve_process;
mod shutdown;
mod smtp_outcome;
mod status_settles;
mod webchat;
