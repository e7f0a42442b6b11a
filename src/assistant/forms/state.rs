//! What the form engine keeps between messages: where a form stands
//! ([`Stage`]), each field's status and value ([`FieldState`]), the
//! conversation's [`FormState`] (stored as JSON by `store::forms`) and the
//! [`FormView`] that `ask --json` and `eval` show.
//!
//! Plain data and its accessors: no reading of messages, no replies.

use crate::domain::Reason;
use crate::knowledge::forms::{Field, Form};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a form stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The customer asked about the thing the form is for; we offered to take
    /// the details. The next message either takes us up on it or moves on.
    Offered,
    Collecting,
    /// Every field is in; the details were read back and we wait for "yes".
    Confirming,
}

/// One field's status and value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FieldState {
    Empty,
    Filled {
        value: Value,
    },
    /// Answers that could not be used, counted.
    Rejected {
        attempts: u32,
    },
    /// An optional field the customer chose to leave out.
    Skipped,
}

/// The state of one conversation's form, stored as JSON between messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormState {
    pub form: String,
    pub stage: Stage,
    pub fields: BTreeMap<String, FieldState>,
    /// The fields the last reply asked for.
    pub asking: Vec<String>,
}

impl FormState {
    pub(super) fn new(form: &Form, stage: Stage) -> Self {
        FormState {
            form: form.name.clone(),
            stage,
            fields: form
                .fields
                .iter()
                .map(|f| (f.name.clone(), FieldState::Empty))
                .collect(),
            asking: Vec::new(),
        }
    }

    pub(super) fn value(&self, name: &str) -> Option<&Value> {
        match self.fields.get(name) {
            Some(FieldState::Filled { value }) => Some(value),
            _ => None,
        }
    }

    /// Fields still needed, in the form's order.
    pub(super) fn missing<'f>(&self, form: &'f Form) -> Vec<&'f Field> {
        form.fields
            .iter()
            .filter(|f| {
                matches!(
                    self.fields.get(&f.name),
                    None | Some(FieldState::Empty) | Some(FieldState::Rejected { .. })
                )
            })
            .collect()
    }

    /// On SMS and WhatsApp the customer's number is already known: fills the
    /// form's still-empty `phone` fields with it (E.164), unless a reply is
    /// asking for one right now. The confirmation reads it back, so the
    /// customer can still give another. Returns whether anything was filled.
    pub fn prefill_phone(&mut self, form: &Form, sender_e164: &str) -> bool {
        let valid = sender_e164.starts_with('+')
            && (9..=16).contains(&sender_e164.len())
            && sender_e164[1..].chars().all(|c| c.is_ascii_digit());
        if !valid || form.name != self.form {
            return false;
        }
        let mut filled = false;
        for field in &form.fields {
            if field.kind != crate::knowledge::forms::FieldKind::Phone
                || self.asking.contains(&field.name)
            {
                continue;
            }
            if let Some(state @ FieldState::Empty) = self.fields.get_mut(&field.name) {
                *state = FieldState::Filled {
                    value: Value::String(sender_e164.to_string()),
                };
                filled = true;
            }
        }
        filled
    }

    /// The captured values, as FORMATS.md §6 writes them.
    pub fn captured(&self) -> BTreeMap<String, Value> {
        self.fields
            .iter()
            .filter_map(|(name, state)| match state {
                FieldState::Filled { value } => Some((name.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }
}

/// What `ask --json` and `eval` show of a form (FORMATS.md §7).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormView {
    pub name: String,
    pub fields: BTreeMap<String, Value>,
    pub missing: Vec<String>,
    /// The form was completed (and confirmed) by this message: these are the
    /// fields on the queue item.
    pub completed: bool,
    /// The reason the form is handed over with (forms.toml `escalate_as`).
    #[serde(skip)]
    pub escalate_as: Reason,
}
