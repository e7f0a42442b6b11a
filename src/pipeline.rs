//! The answer workers: claim a stored message from the durable queue (with a
//! lease, so a crashed worker's message is picked up again), fetch the photos
//! it carries (`attachments`), decide and write the reply with the assistant
//! on a blocking thread, and store the reply, the decision and any escalation
//! in one transaction. Sending is `delivery`'s job.

use crate::assistant::forms::FormState;
use crate::domain::Channel;
use crate::http::AppState;
use crate::store::{BotReply, Completion, FormWrite, Job, Owner};
use std::time::Duration;
use tokio::sync::watch;

/// How long a claimed message stays with one worker before another may take it.
pub const ANSWER_LEASE_MS: i64 = 30_000;
/// How long a stopping worker lets the message in hand finish before it
/// gives it back (lease cleared) for the next start or another replica.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How many earlier turns the assistant sees.
const HISTORY_TURNS: i64 = 6;

/// Runs until `shutdown` turns true; finishes the message in hand first, or
/// after [`SHUTDOWN_GRACE`] gives it back unanswered (its reply transaction
/// never committed, so nothing of it is half-written).
pub async fn run_answer_worker(
    state: AppState,
    worker: String,
    mut shutdown: watch::Receiver<bool>,
) {
    // Photos are fetched with it, before the message is answered.
    let media_client = match crate::channels::media::client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the HTTP client; messages will not be answered");
            return;
        }
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        match state.store.claim_job(&worker, ANSWER_LEASE_MS).await {
            Ok(Some(job)) => {
                let mut stopping = shutdown.clone();
                let grace_over = async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                };
                tokio::select! {
                    _ = answer(&state, &media_client, job.clone()) => {}
                    _ = grace_over => {
                        tracing::warn!(message = %job.message_id, "stopping: the message in hand is given back");
                        if let Err(error) = state.store.release_job(&job, "given back at shutdown", 0).await {
                            tracing::error!(%error, "giving the message back failed; its lease will expire");
                        }
                    }
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = state.new_work.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(error) => {
                tracing::error!(%error, "claiming a message failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(message = %job.message_id, channel = %job.channel))]
async fn answer(state: &AppState, media_client: &reqwest::Client, job: Job) {
    let started = std::time::Instant::now();
    let result = async {
        // The customer's photos first, so the owner sees them whoever answers.
        let attachments =
            crate::attachments::settle_pending(state, media_client, &job.message_id).await?;
        // Skip the models entirely when a person already owns the conversation;
        // complete_job checks again in its transaction.
        if state.store.owner(&job.conversation_id).await? == Owner::Human {
            tracing::info!("a person owns this conversation; the bot stays silent");
            state.store.finish_job_silently(&job).await?;
            return Ok(None);
        }
        let history = state
            .store
            .history(&job.conversation_id, job.created_ms, HISTORY_TURNS)
            .await?;
        // The index being served now: a reload swaps it for the next message.
        let assistant = state.assistant.current();
        // A photo that was not kept reads as such, so a form asks again.
        let text = crate::attachments::text_for_assistant(&job.text, &attachments);
        let channel = job.channel;
        // Answered as of when the message arrived (hours, hand-over reply time).
        let sent = jiff::Timestamp::from_millisecond(job.created_ms)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        // The conversation's form in progress, if any (an unreadable state
        // is dropped rather than failing the message forever).
        let form_state = state
            .store
            .form_state(&job.conversation_id)
            .await?
            .and_then(|(_, json)| serde_json::from_str::<FormState>(&json).ok());
        let had_form = form_state.is_some();
        let (outcome, form_state) = tokio::task::spawn_blocking(move || {
            assistant.ask_in_conversation(&text, channel, &history, sent, form_state)
        })
        .await
        .map_err(|e| PipelineError::Worker(e.to_string()))?
        .map_err(|e| PipelineError::Model(e.to_string()))?;
        let mut form_state = form_state;
        if let Some(form_state) = form_state.as_mut() {
            // A form that just started on SMS or WhatsApp: the number is known.
            let e164 = match job.channel {
                Channel::Sms => Some(job.sender.clone()),
                Channel::Whatsapp => Some(format!("+{}", job.sender.trim_start_matches('+'))),
                _ => None,
            };
            let served = state.assistant.current();
            let forms = &served.index.knowledge.forms;
            if let (false, Some(e164), Some(form)) = (
                had_form,
                e164,
                forms.iter().find(|f| f.name == form_state.form),
            ) {
                form_state.prefill_phone(form, &e164);
            }
        }
        let decision = &outcome.decision;
        let form = match form_state {
            Some(form_state) => FormWrite::Save {
                form: form_state.form.clone(),
                state: serde_json::to_string(&form_state).unwrap_or_default(),
            },
            None if had_form => FormWrite::Clear,
            None => FormWrite::Keep,
        };
        let fields = outcome
            .form
            .as_ref()
            .filter(|_| decision.action == crate::domain::Action::Escalate)
            .and_then(|view| serde_json::to_string(&view.fields).ok());
        let reply = BotReply {
            action: decision.action,
            reason: decision.reason,
            confidence: decision.confidence,
            sources: decision.sources.iter().map(|s| s.0.clone()).collect(),
            text: outcome.reply.clone(),
            form,
            fields,
        };
        let completion = state.store.complete_job(&job, &reply).await?;
        Ok::<_, PipelineError>(Some((completion, reply)))
    }
    .await;
    match result {
        Ok(Some((Completion::Queued { .. }, reply))) => {
            let label = reply.reason.map(|r| r.as_str()).unwrap_or("answer");
            state.metrics.increment(&format!(
                "frontdesk_decisions_total{{decision=\"{label}\"}}"
            ));
            state.metrics.observe_ms(
                "frontdesk_answer_seconds",
                started.elapsed().as_secs_f64() * 1000.0,
            );
            tracing::info!(
                action = reply.action.as_str(),
                reason = label,
                confidence = reply.confidence,
                "reply queued"
            );
            state.new_reply.notify_one();
        }
        Ok(Some((Completion::Silenced, _))) | Ok(None) => {
            state.metrics.increment("frontdesk_silenced_total");
        }
        Err(error) => {
            tracing::error!(%error, attempts = job.attempts, "answering failed; will retry");
            let backoff = 1_000 * 2i64.pow(job.attempts.clamp(0, 8) as u32);
            if let Err(error) = state
                .store
                .release_job(&job, &error.to_string(), backoff)
                .await
            {
                tracing::error!(%error, "releasing the message failed; its lease will expire");
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum PipelineError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("model: {0}")]
    Model(String),
    #[error("worker: {0}")]
    Worker(String),
}
