//! The form engine: collecting a form's fields (forms.toml, FORMATS.md §6)
//! over a conversation, one customer message at a time.
//!
//! Pure functions over an explicit [`FormState`] (stored per conversation by
//! `store::forms`, replayed from `history` by `eval`): the same messages give
//! the same state on every path. Each message is classified before anything
//! is extracted — cancel, a request for a person, a confirmation, a
//! correction, an FAQ question, or an answer — and free text only ever goes
//! into the field that was asked for. Nothing here reads the clock: `today`
//! comes in with the message.
//!
//! Split by concern: `state` holds the stored [`FormState`] and the
//! [`FormView`]; `classify` tells what kind of message it is; `extract` takes
//! field values from it (with `values` reading times, phones, emails and
//! photos); `render` writes what goes out next. This module runs one message
//! through them ([`step`]).

mod classify;
mod extract;
mod render;
mod state;
mod values;

#[cfg(test)]
mod photo_tests;
#[cfg(test)]
mod tests;

pub use state::{FieldState, FormState, FormView, Stage};
pub use values::PHOTO_NOT_RECEIVED;

use crate::domain::{Action, Reason, SourceId};
use crate::knowledge::forms::{FieldKind, Form};
use classify::{
    is_affirmative_start, is_cancel, is_correction, is_no, is_yes, starts_with_question_word,
};
use extract::{take_values, Reader};
use jiff::civil::Date;
use render::{complete, confirmation, continue_form, handover_fields, view};

/// After this many failed answers to one field the form is handed to a person.
pub const MAX_ATTEMPTS: u32 = 3;

/// Everything the engine knows about one message besides the state.
pub struct Message<'a> {
    pub text: &'a str,
    /// Business-local date the message was sent.
    pub today: Date,
    /// n/n dates are month first (an American business).
    pub month_first: bool,
    /// Whether the business opens on a date (true when it has no hours).
    pub open_on: &'a dyn Fn(Date) -> bool,
    /// A rule that must reach a person whatever the form (a person asked for,
    /// a complaint, something sensitive), or a high-value order.
    pub rule: Option<Reason>,
    /// The ordinary decision's confident answer (reply text and first source),
    /// if it has one.
    pub answer: Option<(&'a str, &'a SourceId)>,
    /// The best-matching form phrasing: (form index, cosine similarity).
    pub phrasing_match: Option<(usize, f32)>,
    /// Cosine similarity of the message to the best knowledge entry.
    pub answer_score: f32,
}

/// What the engine decided for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Not about a form: the ordinary decision stands and no form is in progress.
    Pass,
    /// The ordinary answer stands, and the form is now offered.
    Offer { state: FormState },
    /// The reply is the engine's own.
    Reply {
        action: Action,
        reason: Option<Reason>,
        text: String,
        /// The state to store; `None` clears it.
        state: Option<FormState>,
        view: Option<FormView>,
    },
}

/// A message this similar to one of a form's phrasings starts the form.
pub const START_SIMILARITY: f32 = 0.75;
/// A question the knowledge answers starts the form only this close.
pub const CLEAR_START_SIMILARITY: f32 = 0.9;
/// A high-value order starts the form at this lower similarity.
pub const HIGH_VALUE_START_SIMILARITY: f32 = 0.55;

/// One message through the forms. `state` is the conversation's stored state.
pub fn step(forms: &[Form], state: Option<FormState>, message: &Message, handover: &str) -> Step {
    let hard_rule = message.rule.filter(|r| {
        matches!(
            r,
            Reason::HumanRequested | Reason::Complaint | Reason::Sensitive
        )
    });
    let Some(state) = state else {
        return start(forms, message, hard_rule);
    };
    let Some(form) = forms.iter().find(|f| f.name == state.form) else {
        // The owner removed the form: forget it.
        return Step::Pass;
    };
    let reader = Reader::new(message, form);
    if state.stage == Stage::Offered {
        let mut collecting = FormState::new(form, Stage::Collecting);
        let (taken, invalid) = take_values(&reader, form, &mut collecting, false);
        // A new question moves on ("ok how early do I have to order?").
        let moves_on = super::asks_something(message.text);
        if hard_rule.is_none() && (taken || (!moves_on && is_affirmative_start(message.text))) {
            return continue_form(form, collecting, "", invalid, message.today, handover);
        }
        return start(forms, message, hard_rule);
    }
    if is_cancel(message.text) {
        return Step::Reply {
            action: Action::Answer,
            reason: None,
            text: format!(
                "No problem, I've cancelled the {}. Is there anything else I can help with?",
                form.title.to_lowercase()
            ),
            state: None,
            view: None,
        };
    }
    if let Some(reason) = hard_rule {
        return Step::Reply {
            action: Action::Escalate,
            reason: Some(reason),
            text: handover.to_string(),
            state: None,
            view: Some(handover_fields(form, &state)),
        };
    }
    let mut state = state;
    if state.stage == Stage::Confirming {
        if is_yes(message.text) && !is_correction(message.text) {
            return complete(form, &state, handover);
        }
        let (taken, invalid) = take_values(&reader, form, &mut state, true);
        if taken || invalid.is_some() {
            return continue_form(form, state, "", invalid, message.today, handover);
        }
        if let Some((answer, _)) = message
            .answer
            .filter(|_| super::asks_something(message.text))
        {
            return Step::Reply {
                action: Action::Collect,
                reason: None,
                text: format!("{answer}\n\n{}", confirmation(form, &state, message.today)),
                view: Some(view(form, &state, false)),
                state: Some(state),
            };
        }
        let text = if is_no(message.text) {
            "Sorry about that! What should I change?".to_string()
        } else {
            "Shall I pass these details to the team? Reply yes, or tell me what to change."
                .to_string()
        };
        return Step::Reply {
            action: Action::Collect,
            reason: None,
            text,
            view: Some(view(form, &state, false)),
            state: Some(state),
        };
    }
    // Collecting. An FAQ question first: a question the knowledge answers
    // that gives none of the typed values is answered, then the pending
    // question is asked again.
    let before = state.clone();
    let correction = is_correction(message.text);
    let (taken, invalid) = take_values(&reader, form, &mut state, correction);
    let typed_taken = form.fields.iter().any(|f| {
        f.kind != FieldKind::Text
            && state.fields.get(&f.name) != before.fields.get(&f.name)
            && matches!(state.fields.get(&f.name), Some(FieldState::Filled { .. }))
    });
    if let Some((answer, _)) = message.answer {
        if !typed_taken && super::asks_something(message.text) {
            let asks: Vec<&str> = before
                .asking
                .iter()
                .filter_map(|name| form.field(name))
                .map(|f| f.ask.as_str())
                .collect();
            return Step::Reply {
                action: Action::Collect,
                reason: None,
                text: format!("{answer}\n\n{}", asks.join(" ")),
                view: Some(view(form, &before, false)),
                state: Some(before),
            };
        }
    }
    if taken {
        // Something new came in: a re-ask for another part waits for its turn,
        // except a value that was refused (it is asked about now).
        return continue_form(form, state, "Thanks! ", invalid, message.today, handover);
    }
    // Nothing usable: a failed answer to the field asked.
    let asked = before.asking.first().cloned();
    if let Some(name) = &asked {
        if let Some(FieldState::Rejected { attempts }) = state.fields.get(name) {
            if *attempts >= MAX_ATTEMPTS {
                let label = form
                    .field(name)
                    .map(|f| f.label.to_lowercase())
                    .unwrap_or_default();
                return Step::Reply {
                    action: Action::Escalate,
                    reason: Some(form.escalate_as),
                    text: format!(
                        "Sorry, I'm having trouble getting the {label} right. I've passed what you've told me to the team, and a person will get back to you shortly."
                    ),
                    state: None,
                    view: Some(handover_fields(form, &state)),
                };
            }
        }
    }
    let reask = invalid.unwrap_or_else(|| {
        let asks: Vec<&str> = before
            .asking
            .iter()
            .filter_map(|name| form.field(name))
            .map(|f| f.ask.as_str())
            .collect();
        asks.join(" ")
    });
    // Only the asked field's question goes out again.
    state.asking = asked.into_iter().collect();
    continue_form(form, state, "", Some(reask), message.today, handover)
}

/// No form in progress: does this message start one?
fn start(forms: &[Form], message: &Message, hard_rule: Option<Reason>) -> Step {
    if hard_rule.is_some() || forms.is_empty() {
        return Step::Pass;
    }
    // A question the knowledge answers ("how do I order a cake?", "what size
    // for 30 people?") is answered, not turned into a form, unless it is
    // closer to the form than to the answer.
    let answered_question = message.answer.is_some()
        && super::asks_something(message.text)
        && (starts_with_question_word(message.text)
            || message.answer_score > message.phrasing_match.map_or(0.0, |m| m.1));
    let phrased = message.phrasing_match.filter(|(_, similarity)| {
        (*similarity >= START_SIMILARITY
            && (!answered_question || *similarity >= CLEAR_START_SIMILARITY))
            || (message.rule == Some(Reason::HighValue)
                && *similarity >= HIGH_VALUE_START_SIMILARITY)
    });
    let by_source = message
        .answer
        .and_then(|(_, source)| forms.iter().position(|f| f.sources.contains(source)));
    let high_value_source = (message.rule == Some(Reason::HighValue))
        .then_some(by_source)
        .flatten();
    if let Some(index) = phrased.map(|(i, _)| i).or(high_value_source) {
        let form = &forms[index];
        let reader = Reader::new(message, form);
        let mut state = FormState::new(form, Stage::Collecting);
        let (_, invalid) = take_values(&reader, form, &mut state, false);
        let lead = format!(
            "I can take the details for your {} and pass them to the team. ",
            form.title.to_lowercase()
        );
        return continue_form(form, state, &lead, invalid, message.today, "");
    }
    if let Some(index) = by_source {
        // "can u make a bday cake? next saturday, vanilla": a question about
        // the form's subject that already carries its details starts it.
        let form = &forms[index];
        let reader = Reader::new(message, form);
        let mut state = FormState::new(form, Stage::Collecting);
        let (taken, invalid) = take_values(&reader, form, &mut state, false);
        if taken {
            let lead = format!(
                "I can take the details for your {} and pass them to the team. ",
                form.title.to_lowercase()
            );
            return continue_form(form, state, &lead, invalid, message.today, "");
        }
        return Step::Offer {
            state: FormState::new(form, Stage::Offered),
        };
    }
    Step::Pass
}
