//! One integration test binary: the real `frontdesk` binary and library with the
//! real models and the shipped knowledge folders.

mod helpers;

mod alerts;
mod ask;
mod backup;
mod check;
mod crash;
mod db_outage;
mod decoder;
mod eval;
mod forms;
mod generator;
mod hours;
mod inbox_api;
mod inbox_browser;
mod ingest_batch;
mod live_reload;
mod photos;
mod reindex;
mod serve;
mod serve_helpers;
mod serve_process;
mod shutdown;
mod webchat;
