//! The forms part of the report (FORMATS.md §7): how well lines that expect a
//! form or captured fields got them.
//!
//! Pure arithmetic over finished [`QuestionResult`]s; it never asks the
//! assistant or decides what counts as a miss ([`QuestionResult::form_miss`] does).

use super::{ratio, QuestionResult};
use serde::Serialize;
use std::collections::BTreeMap;

/// FORMATS.md §7 `forms`: how well forms were started and filled.
#[derive(Debug, Clone, Serialize)]
pub struct FormsReport {
    /// Lines with `expect.form` or `expect.fields`.
    pub lines: usize,
    pub form_started_ok: Option<f64>,
    pub fields_exact: Option<f64>,
    pub field_accuracy: BTreeMap<String, f64>,
    /// Captured date or time values that differ from the expected one.
    pub wrong_dates: usize,
    /// Of those lines: the action (`collect` / `answer` / `escalate`) as expected.
    pub action_ok: Option<f64>,
}

/// `None` when no line expects a form or fields.
pub fn forms_report(results: &[QuestionResult]) -> Option<FormsReport> {
    let lines: Vec<&QuestionResult> = results
        .iter()
        .filter(|r| r.expected_form.is_some() || r.expected_fields.is_some())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let with_form: Vec<&&QuestionResult> =
        lines.iter().filter(|r| r.expected_form.is_some()).collect();
    let started_ok = with_form
        .iter()
        .filter(|r| r.form.as_ref().map(|f| &f.name) == r.expected_form.as_ref())
        .count();
    let with_fields: Vec<&&QuestionResult> = lines
        .iter()
        .filter(|r| r.expected_fields.is_some())
        .collect();
    let mut per_field: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut exact = 0;
    let mut wrong_dates = 0;
    for result in &with_fields {
        let expected = result.expected_fields.as_ref().expect("filtered");
        let captured = result.form.as_ref().map(|f| &f.fields);
        let mut all = true;
        for (name, want) in expected {
            let got = captured.and_then(|c| c.get(name));
            let ok = got == Some(want);
            let entry = per_field.entry(name.clone()).or_default();
            entry.1 += 1;
            if ok {
                entry.0 += 1;
            } else {
                all = false;
                let looks_like_date_or_time = want.as_str().is_some_and(|w| {
                    w.parse::<jiff::civil::Date>().is_ok() || w.parse::<jiff::civil::Time>().is_ok()
                });
                if got.is_some() && looks_like_date_or_time {
                    wrong_dates += 1;
                }
            }
        }
        if all {
            exact += 1;
        }
    }
    let action_ok = lines
        .iter()
        .filter(|r| r.form_action == r.expected_form_action)
        .count();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Some(FormsReport {
        lines: lines.len(),
        form_started_ok: ratio(started_ok, with_form.len()).map(round),
        fields_exact: ratio(exact, with_fields.len()).map(round),
        field_accuracy: per_field
            .into_iter()
            .map(|(name, (ok, total))| (name, round(ok as f64 / total as f64)))
            .collect(),
        wrong_dates,
        action_ok: ratio(action_ok, lines.len()).map(round),
    })
}
