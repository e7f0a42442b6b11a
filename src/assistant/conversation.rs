//! One message of a conversation with its form state: the ordinary decision
//! ([`Assistant::ask`]) and then the form engine ([`super::forms::step`]) over
//! the stored state. `serve` (through the answer worker), `ask` and `eval`
//! (which replays a line's history) all come through here, so the same
//! messages give the same state everywhere.

use super::forms::{self, FormState, Message, Step};
use super::{reply, Assistant, Outcome};
use crate::domain::{Action, Channel, Reason, Turn};
use crate::inference::ModelError;
use jiff::civil::Date;
use jiff::Timestamp;

impl Assistant {
    /// Decides one message of a conversation whose form state is `state`, sent
    /// at `now` (dates resolve in the business's time zone). Returns the outcome (with
    /// `outcome.form` while a form is in progress or just completed) and the
    /// state to keep (`None`: no form in progress).
    pub fn ask_in_conversation(
        &self,
        message: &str,
        channel: Channel,
        history: &[Turn],
        now: Timestamp,
        state: Option<FormState>,
    ) -> Result<(Outcome, Option<FormState>), ModelError> {
        let outcome = self.ask_at(message, channel, history, now)?;
        self.apply_forms(outcome, message, channel, now, state)
    }

    /// The form engine over an ordinary decision already made for `message`
    /// (eval decides many messages in one batch, then applies the forms).
    pub fn apply_forms(
        &self,
        mut outcome: Outcome,
        message: &str,
        channel: Channel,
        now: Timestamp,
        state: Option<FormState>,
    ) -> Result<(Outcome, Option<FormState>), ModelError> {
        let knowledge = &self.index.knowledge;
        if knowledge.forms.is_empty() {
            return Ok((outcome, None));
        }
        let started = std::time::Instant::now();
        let expanded = crate::text::expand_shorthand(message);
        // The decision already embedded the whole message: reuse its vector.
        let (vectors, answer_score) = match outcome.message_match.take() {
            Some((vector, best)) => (vec![vector], best),
            None => {
                let vectors = self.embedder().embed(&[expanded.as_str()])?;
                // How close the best knowledge entry is, on the same cosine scale.
                let best = self
                    .index
                    .search(&expanded, &vectors, 1)
                    .first()
                    .map_or(0.0, |hit| hit.dense);
                (vectors, best)
            }
        };
        let phrasing_match = self.index.best_form(&vectors);
        let decision = &outcome.decision;
        let rule = match decision.action {
            Action::Escalate => decision.reason.filter(|r| {
                matches!(
                    r,
                    Reason::HumanRequested
                        | Reason::Complaint
                        | Reason::Sensitive
                        | Reason::HighValue
                )
            }),
            _ => None,
        };
        let owner_answer = outcome.reply.clone();
        let first_source = decision.sources.first().cloned();
        let answer = match (&decision.action, &first_source) {
            (Action::Answer, Some(source)) => Some((owner_answer.as_str(), source)),
            _ => None,
        };
        let business = &knowledge.business;
        let zone = jiff::tz::TimeZone::get(&business.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let today = now.to_zoned(zone).date();
        let open_on = |date: Date| open_on(business, date);
        let form_message = Message {
            text: message,
            today,
            month_first: super::dates::month_first_in(&business.timezone),
            open_on: &open_on,
            rule,
            answer,
            phrasing_match,
            answer_score,
        };
        let step = forms::step(
            &knowledge.forms,
            state,
            &form_message,
            &business.escalation.handover_message,
        );
        let state = match step {
            Step::Pass => None,
            Step::Offer { state } => {
                outcome.reply = append_to_reply(
                    &outcome.reply,
                    "Would you like to order one? I can take the details here.",
                    channel,
                );
                Some(state)
            }
            Step::Reply {
                action,
                reason,
                text,
                state,
                view,
            } => {
                let answered_question = text.starts_with(owner_answer.trim()) && answer.is_some();
                outcome.decision.action = action;
                outcome.decision.reason = reason;
                if !answered_question {
                    outcome.decision.sources.clear();
                }
                // The owner's text joined with a question is already fitted.
                outcome.reply = if answered_question {
                    append_to_reply(
                        &owner_answer,
                        text[owner_answer.trim().len()..].trim(),
                        channel,
                    )
                } else {
                    reply::fit_to_channel(&text, channel, &business.name)
                };
                outcome.explanation = format!(
                    "form {}: {} (phrasing similarity {:.3}; {})",
                    view.as_ref().map(|v| v.name.as_str()).unwrap_or("-"),
                    action.as_str(),
                    phrasing_match.map_or(0.0, |m| m.1),
                    outcome.explanation
                );
                outcome.form = view;
                state
            }
        };
        outcome.timings.total += started.elapsed().as_secs_f64() * 1000.0;
        Ok((outcome, state))
    }

    /// Replays the customer turns of `history` through the forms, each as if
    /// sent at `now` (FORMATS.md §7), and returns the state they leave.
    pub fn replay_history(
        &self,
        history: &[Turn],
        channel: Channel,
        now: Timestamp,
    ) -> Result<Option<FormState>, ModelError> {
        let mut state = None;
        if self.index.knowledge.forms.is_empty() {
            return Ok(None);
        }
        for (position, turn) in history.iter().enumerate() {
            if turn.from != crate::domain::Speaker::Customer {
                continue;
            }
            let (_, next) =
                self.ask_in_conversation(&turn.text, channel, &history[..position], now, state)?;
            state = next;
        }
        Ok(state)
    }
}

/// Whether the business opens on `date`: a weekday with hours and not a
/// closure. A business without hours is taken as open every day.
fn open_on(business: &crate::knowledge::business::Business, date: Date) -> bool {
    let Some(hours) = &business.hours else {
        return true;
    };
    let weekday = date.weekday().to_monday_zero_offset() as usize;
    !hours[weekday].is_empty() && !business.closures.iter().any(|c| c.contains(date))
}

/// A question after an already fitted reply: before an email's sign-off, and
/// on SMS kept whole by shortening the answer in front of it.
fn append_to_reply(fitted: &str, question: &str, channel: Channel) -> String {
    match channel {
        Channel::Email => match fitted.rfind("\n\nBest regards,") {
            Some(at) => format!("{}\n\n{question}{}", &fitted[..at], &fitted[at..]),
            None => format!("{fitted}\n\n{question}"),
        },
        Channel::Sms => {
            let room = reply::SMS_LIMIT.saturating_sub(question.chars().count() + 1);
            format!("{} {question}", reply::shorten(fitted, room))
        }
        _ => format!("{fitted}\n\n{question}"),
    }
}
