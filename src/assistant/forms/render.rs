//! What the engine says next once values are in: the next question (two
//! at once when both are typed), the read-back for confirmation, the
//! hand-over when the form is complete, and the [`FormView`] each reply carries.
//!
//! Never reads the message: it works from the state the caller built.

use super::state::{FormState, FormView, Stage};
use super::Step;
use crate::assistant::dates;
use crate::domain::Action;
use crate::knowledge::forms::{Field, FieldKind, Form};
use jiff::civil::Date;
use serde_json::Value;

/// How a captured value is read back in the confirmation.
fn read_back(field: &Field, value: &Value, today: Date) -> String {
    match (field.kind, value) {
        (FieldKind::Date, Value::String(text)) => text
            .parse::<Date>()
            .map(|d| dates::format_date(d, today))
            .unwrap_or_else(|_| text.clone()),
        (FieldKind::Photo, _) => "photo received".into(),
        (_, Value::String(text)) => text.clone(),
        (_, other) => other.to_string(),
    }
}

pub(super) fn view(form: &Form, state: &FormState, completed: bool) -> FormView {
    FormView {
        name: form.name.clone(),
        fields: state.captured(),
        missing: state.missing(form).iter().map(|f| f.name.clone()).collect(),
        completed,
        escalate_as: form.escalate_as,
    }
}

/// Fields whose question goes out next: the first one missing, and the
/// second too when both are answered with a date, number or choice (a
/// message can carry both; two free-text answers could not be told apart),
/// or when the second is an optional photo (asked once, with the question
/// before it: a photo is told apart from words, and any answer moves on).
fn next_asks<'f>(form: &'f Form, state: &FormState) -> Vec<&'f Field> {
    let missing = state.missing(form);
    let typed = |f: &Field| {
        matches!(
            f.kind,
            FieldKind::Date | FieldKind::Integer | FieldKind::Choice
        )
    };
    let optional_photo = |f: &Field| f.kind == FieldKind::Photo && !f.required;
    match missing.as_slice() {
        [first, second, ..] if typed(first) && typed(second) => vec![first, second],
        [first, second, ..] if first.kind != FieldKind::Photo && optional_photo(second) => {
            vec![first, second]
        }
        [first, ..] => vec![first],
        [] => Vec::new(),
    }
}

pub(super) fn confirmation(form: &Form, state: &FormState, today: Date) -> String {
    let lines: Vec<String> = form
        .fields
        .iter()
        .filter_map(|f| {
            state
                .value(&f.name)
                .map(|v| format!("- {}: {}", f.label, read_back(f, v, today)))
        })
        .collect();
    format!(
        "Here's what I have for your {}:\n{}\nIs that all correct? Reply yes and I'll pass it to the team, or tell me what to change.",
        form.title.to_lowercase(),
        lines.join("\n")
    )
}

pub(super) fn handover_fields(form: &Form, state: &FormState) -> FormView {
    FormView {
        name: state.form.clone(),
        fields: state.captured(),
        missing: Vec::new(),
        completed: true,
        escalate_as: form.escalate_as,
    }
}

/// The reply after values were taken: what is still missing, or the
/// confirmation, or (without confirmation) the hand-over.
pub(super) fn continue_form(
    form: &Form,
    mut state: FormState,
    lead: &str,
    invalid: Option<String>,
    today: Date,
    handover: &str,
) -> Step {
    if let Some(reask) = invalid {
        let text = format!("{lead}{reask}").trim().to_string();
        let view_now = view(form, &state, false);
        return Step::Reply {
            action: Action::Collect,
            reason: None,
            text,
            state: Some(state),
            view: Some(view_now),
        };
    }
    let asks = next_asks(form, &state);
    if asks.is_empty() {
        if form.confirm {
            state.stage = Stage::Confirming;
            state.asking.clear();
            let text = format!("{lead}{}", confirmation(form, &state, today));
            let view_now = view(form, &state, false);
            return Step::Reply {
                action: Action::Collect,
                reason: None,
                text,
                state: Some(state),
                view: Some(view_now),
            };
        }
        return complete(form, &state, handover);
    }
    state.stage = Stage::Collecting;
    state.asking = asks.iter().map(|f| f.name.clone()).collect();
    let questions: Vec<&str> = asks.iter().map(|f| f.ask.as_str()).collect();
    let text = format!("{lead}{}", questions.join(" "));
    let view_now = view(form, &state, false);
    Step::Reply {
        action: Action::Collect,
        reason: None,
        text,
        state: Some(state),
        view: Some(view_now),
    }
}

pub(super) fn complete(form: &Form, state: &FormState, handover: &str) -> Step {
    Step::Reply {
        action: Action::Escalate,
        reason: Some(form.escalate_as),
        text: form.done.clone().unwrap_or_else(|| handover.to_string()),
        state: None,
        view: Some(handover_fields(form, state)),
    }
}
