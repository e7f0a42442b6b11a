//! Group commit for inbound messages: request handlers hand their parsed
//! message to an [`IngestWriter`] and wait; one writer task takes everything
//! queued (up to [`MAX_BATCH`]), writes the messages in one transaction, commits
//! once and only then answers each waiting handler. A batch of plain messages
//! takes one statement per table (`ingest_rows`); one holding an echo or an
//! attachment writes each message with `ingest_in` (the same rows, dedup and
//! job as a lone `Store::ingest_with`). So a
//! webhook is still acknowledged only once its message is durable, but one
//! fsync (SQLite `synchronous=FULL`) or one PostgreSQL commit covers a batch.
//!
//! One message must not fail the others: a batch that errors (or meets a
//! provider id another writer committed meanwhile) is rolled back and its
//! messages are written one transaction each, so each gets its own answer.
//! This module never acknowledges anything itself: it answers the handler,
//! which answers the provider.

use super::ingest::{ingest_in, Written};
use super::ingest_rows;
use super::*;
use tokio::sync::{mpsc, oneshot};

/// The most messages one transaction holds.
pub const MAX_BATCH: usize = 256;
/// Messages waiting for a writer; a handler past this waits for room, so a
/// flood slows the senders down instead of growing memory. Webhooks never
/// get that far: `http::shed` lets fewer of them in at once (`[limits]
/// inflight_webhooks`) and answers the rest 503 before reading their bodies.
const QUEUE_DEPTH: usize = 4 * MAX_BATCH;

/// One inbound message with the attachments written in its transaction.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub message: InboundMessage,
    pub attachments: Vec<NewAttachment>,
}

struct Request {
    item: BatchItem,
    reply: oneshot::Sender<Result<Ingested, StoreError>>,
}

/// The handle request handlers hold (cheap to clone): the queue into the
/// writer tasks. The writers end when every handle is dropped.
#[derive(Clone)]
pub struct IngestWriter {
    queue: mpsc::Sender<Request>,
}

impl IngestWriter {
    /// Starts the writer task. One on either store: a batch is a handful of
    /// statements whatever its size (`ingest_rows`), so while one commits the
    /// next batch simply grows. Measured with `bench/ingest.sh` on
    /// PostgreSQL (2 cores shared with the load tool): one writer 4,655
    /// acked msg/s at p99 10.4 ms, two 3,911 at 14.6 ms; small batches over
    /// many writers cost the server more statements per message.
    pub fn start(store: Store) -> IngestWriter {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run_writer(store, receiver));
        IngestWriter { queue }
    }

    /// Stores `message` (with its attachments) in the next batch and answers
    /// once that batch is committed.
    pub async fn ingest(
        &self,
        message: InboundMessage,
        attachments: Vec<NewAttachment>,
    ) -> Result<Ingested, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            item: BatchItem {
                message,
                attachments,
            },
            reply,
        };
        if self.queue.send(request).await.is_err() {
            return Err(StoreError::Unavailable("the ingest writer has stopped"));
        }
        answer.await.unwrap_or(Err(StoreError::Unavailable(
            "the ingest writer has stopped",
        )))
    }
}

async fn run_writer(store: Store, mut receiver: mpsc::Receiver<Request>) {
    let mut requests = Vec::with_capacity(MAX_BATCH);
    loop {
        // Everything queued (at least one message) goes in the next batch.
        let received = receiver.recv_many(&mut requests, MAX_BATCH).await;
        if received == 0 {
            return; // every handle dropped: nothing more can arrive
        }
        let items: Vec<&BatchItem> = requests.iter().map(|request| &request.item).collect();
        let started = std::time::Instant::now();
        let results = store.ingest_batch(&items).await;
        tracing::debug!(
            messages = items.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "ingest batch"
        );
        for (request, result) in requests.drain(..).zip(results) {
            // A handler that gave up (timeout) is gone; the provider retries
            // and the retry is deduplicated.
            let _ = request.reply.send(result);
        }
    }
}

impl Store {
    /// Writes `items` in one transaction (see the module doc); one result per
    /// item, in order.
    pub async fn ingest_batch(&self, items: &[&BatchItem]) -> Vec<Result<Ingested, StoreError>> {
        // One lock order for every writer (by sender; a sender's own messages
        // keep their arrival order): concurrent PostgreSQL batches touching the
        // same contacts wait for each other instead of deadlocking.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&items[a].message, &items[b].message);
            (a.channel.as_str(), &a.sender).cmp(&(b.channel.as_str(), &b.sender))
        });
        let sorted: Vec<&BatchItem> = order.iter().map(|&n| items[n]).collect();
        // A second try sees the provider ids a racing writer committed as duplicates.
        for _ in 0..2 {
            match self.write_batch(&sorted).await {
                Ok(Some(outcomes)) => {
                    let mut results: Vec<Option<Ingested>> = vec![None; items.len()];
                    for (&n, outcome) in order.iter().zip(outcomes) {
                        results[n] = Some(outcome);
                    }
                    return results
                        .into_iter()
                        .map(|r| r.ok_or(StoreError::Unavailable("batch result missing")))
                        .collect();
                }
                Ok(None) => continue,
                Err(StoreError::Database(error)) if unreachable(&error) => {
                    // No message can be written now: each handler answers 503 at once
                    // (the providers retry) rather than after one timeout per message.
                    tracing::error!(%error, messages = items.len(), "the database cannot be reached");
                    return items
                        .iter()
                        .map(|_| Err(StoreError::Unavailable("the database cannot be reached")))
                        .collect();
                }
                Err(error) => {
                    if items.len() > 1 {
                        tracing::warn!(%error, messages = items.len(), "a batch failed; writing its messages one by one");
                    }
                    break;
                }
            }
        }
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            results.push(self.ingest_with(&item.message, &item.attachments).await);
        }
        results
    }

    /// One transaction for the whole batch; `None` when a message raced
    /// another writer (everything rolled back).
    async fn write_batch(&self, items: &[&BatchItem]) -> Result<Option<Vec<Ingested>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The usual batch (no echo, no attachment) takes one statement per
        // table; the rest keep the one-message-at-a-time rows.
        if items
            .iter()
            .all(|item| ingest_rows::is_plain(&item.message, &item.attachments))
        {
            let messages: Vec<&InboundMessage> = items.iter().map(|item| &item.message).collect();
            return match ingest_rows::ingest_rows_in(&mut tx, self.backend, &messages).await? {
                Ok(outcomes) => {
                    tx.commit().await?;
                    Ok(Some(outcomes))
                }
                Err(_raced) => {
                    tx.rollback().await?;
                    Ok(None)
                }
            };
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            match ingest_in(&mut tx, &item.message, &item.attachments).await? {
                Written::Done(outcome) => outcomes.push(outcome),
                Written::Raced => {
                    tx.rollback().await?;
                    return Ok(None);
                }
            }
        }
        tx.commit().await?;
        Ok(Some(outcomes))
    }
}

/// Errors of the connection rather than of one message's statements.
fn unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    )
}
