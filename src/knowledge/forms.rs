//! `forms.toml`: the details the assistant collects for a custom request
//! before a person takes it over (FORMATS.md §6). Parsed with
//! `deny_unknown_fields` and spans, so every mistake is `forms.toml:LINE: …`.
//!
//! Pure parsing and validation; whether a `sources` id exists is checked by
//! the folder loader ([`check_sources`]) once every entry is known.

use super::{line_of, toml_error, Issue};
use crate::domain::{Reason, SourceId};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The kinds of value a field captures (FORMATS.md §6 `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Date,
    Time,
    Integer,
    Choice,
    Text,
    Phone,
    Email,
    Photo,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    name: Spanned<String>,
    ask: String,
    #[serde(rename = "type")]
    kind: FieldKind,
    #[serde(default = "yes")]
    required: bool,
    /// How the field is named in the confirmation ("Date", "Servings").
    label: Option<String>,
    min_days_ahead: Option<Spanned<i64>>,
    max_days_ahead: Option<Spanned<i64>>,
    #[serde(default)]
    open_days_only: bool,
    min: Option<Spanned<i64>>,
    max: Option<Spanned<i64>>,
    choices: Option<Spanned<Vec<String>>>,
    /// Words that mark a number as this field's outside its own question
    /// ("20 people", "serves 20"); without them a bare number is only taken
    /// when the question asked for it.
    #[serde(default)]
    units: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormFile {
    title: String,
    #[serde(default)]
    phrasings: Vec<String>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    escalate_as: Option<Reason>,
    #[serde(default = "yes")]
    confirm: bool,
    /// What the customer is told once the details are handed over (default:
    /// business.toml's hand-over message).
    done: Option<String>,
    #[serde(default)]
    fields: Vec<FieldFile>,
}

/// One field to collect.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub label: String,
    /// The owner's own question.
    pub ask: String,
    pub kind: FieldKind,
    pub required: bool,
    pub min_days_ahead: Option<i64>,
    pub max_days_ahead: Option<i64>,
    pub open_days_only: bool,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub choices: Vec<String>,
    pub units: Vec<String>,
}

/// One form: what starts it, the fields, and how it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub name: String,
    pub title: String,
    pub phrasings: Vec<String>,
    pub sources: Vec<SourceId>,
    pub escalate_as: Reason,
    pub confirm: bool,
    pub done: Option<String>,
    pub fields: Vec<Field>,
    /// Line of each `sources` entry, for the existence check.
    source_lines: Vec<usize>,
}

impl Form {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Parses and validates forms.toml; problems go to `issues`.
pub fn parse(path: &str, text: &str, issues: &mut Vec<Issue>) -> Vec<Form> {
    let files: BTreeMap<String, Spanned<FormFile>> = match toml::from_str(text) {
        Ok(files) => files,
        Err(error) => {
            issues.push(toml_error(path, text, &error));
            return Vec::new();
        }
    };
    // The owner's order (the map above sorts by name).
    let order: Vec<String> = text
        .parse::<toml::Table>()
        .map(|table| table.keys().cloned().collect())
        .unwrap_or_default();
    let mut forms = Vec::new();
    for name in order {
        let Some(spanned) = files.get(&name) else {
            continue;
        };
        let form_line = line_of(text, spanned.span().start);
        let file = spanned.get_ref();
        let mut error = |line: usize, message: String| {
            issues.push(Issue::error(path, line, message));
        };
        if !valid_name(&name) {
            error(
                form_line,
                format!("form name `{name}` must be lower-case letters, digits and `_`"),
            );
        }
        if file.phrasings.is_empty() && file.sources.is_empty() {
            error(
                form_line,
                format!("form `{name}` has no `phrasings` or `sources`: nothing would start it"),
            );
        }
        if file.fields.is_empty() {
            error(
                form_line,
                format!("form `{name}` has no `[[{name}.fields]]`"),
            );
        }
        let mut fields: Vec<Field> = Vec::new();
        for field in &file.fields {
            let field_name = field.name.get_ref().clone();
            let line = line_of(text, field.name.span().start);
            if !valid_name(&field_name) {
                error(
                    line,
                    format!("field name `{field_name}` must be lower-case letters, digits and `_`"),
                );
            }
            if fields.iter().any(|f| f.name == field_name) {
                error(
                    line,
                    format!("field `{field_name}` appears twice in form `{name}`"),
                );
            }
            if field.ask.trim().is_empty() {
                error(line, format!("field `{field_name}`: `ask` is empty"));
            }
            let only_for = |key: &str, present: bool, kind: FieldKind| {
                (present && field.kind != kind).then(|| {
                    let kind = format!("{kind:?}").to_lowercase();
                    format!("field `{field_name}`: `{key}` only applies to type = \"{kind}\"")
                })
            };
            let misplaced = [
                only_for(
                    "min_days_ahead",
                    field.min_days_ahead.is_some(),
                    FieldKind::Date,
                ),
                only_for(
                    "max_days_ahead",
                    field.max_days_ahead.is_some(),
                    FieldKind::Date,
                ),
                only_for("open_days_only", field.open_days_only, FieldKind::Date),
                only_for("min", field.min.is_some(), FieldKind::Integer),
                only_for("max", field.max.is_some(), FieldKind::Integer),
                only_for("choices", field.choices.is_some(), FieldKind::Choice),
            ];
            for message in misplaced.into_iter().flatten() {
                error(line, message);
            }
            let value = |v: &Option<Spanned<i64>>| v.as_ref().map(|s| *s.get_ref());
            if let (Some(min), Some(max)) = (&field.min, &field.max) {
                if min.get_ref() > max.get_ref() {
                    error(
                        line_of(text, min.span().start),
                        format!(
                            "field `{field_name}`: min ({}) is greater than max ({})",
                            min.get_ref(),
                            max.get_ref()
                        ),
                    );
                }
            }
            if let (Some(min), Some(max)) = (&field.min_days_ahead, &field.max_days_ahead) {
                if min.get_ref() > max.get_ref() {
                    error(
                        line_of(text, min.span().start),
                        format!(
                            "field `{field_name}`: min_days_ahead ({}) is greater than max_days_ahead ({})",
                            min.get_ref(),
                            max.get_ref()
                        ),
                    );
                }
            }
            for days in [&field.min_days_ahead, &field.max_days_ahead]
                .into_iter()
                .flatten()
            {
                if *days.get_ref() < 0 {
                    error(
                        line_of(text, days.span().start),
                        format!("field `{field_name}`: days ahead cannot be negative"),
                    );
                }
            }
            let choices = field
                .choices
                .as_ref()
                .map(|c| c.get_ref().clone())
                .unwrap_or_default();
            if field.kind == FieldKind::Choice {
                match &field.choices {
                    None => error(
                        line,
                        format!("field `{field_name}`: a choice field needs `choices`"),
                    ),
                    Some(spanned) if spanned.get_ref().iter().all(|c| c.trim().is_empty()) => {
                        error(
                            line_of(text, spanned.span().start),
                            format!("field `{field_name}`: `choices` is empty"),
                        )
                    }
                    _ => {}
                }
            }
            let label = field.label.clone().unwrap_or_else(|| {
                let spaced = field_name.replace('_', " ");
                let mut chars = spaced.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                    .unwrap_or_default()
            });
            fields.push(Field {
                name: field_name,
                label,
                ask: field.ask.trim().to_string(),
                kind: field.kind,
                required: field.required,
                min_days_ahead: value(&field.min_days_ahead),
                max_days_ahead: value(&field.max_days_ahead),
                open_days_only: field.open_days_only,
                min: value(&field.min),
                max: value(&field.max),
                choices: choices
                    .into_iter()
                    .filter(|c| !c.trim().is_empty())
                    .collect(),
                units: field.units.iter().map(|u| u.to_lowercase()).collect(),
            });
        }
        forms.push(Form {
            name: name.clone(),
            title: file.title.clone(),
            phrasings: file.phrasings.clone(),
            sources: file
                .sources
                .iter()
                .map(|s| SourceId(s.get_ref().clone()))
                .collect(),
            source_lines: file
                .sources
                .iter()
                .map(|s| line_of(text, s.span().start))
                .collect(),
            escalate_as: file.escalate_as.unwrap_or(Reason::HighValue),
            confirm: file.confirm,
            done: file.done.clone(),
            fields,
        });
    }
    forms
}

/// Every `sources` id must name an entry of the folder.
pub fn check_sources(path: &str, forms: &[Form], known: &[SourceId], issues: &mut Vec<Issue>) {
    for form in forms {
        for (source, line) in form.sources.iter().zip(&form.source_lines) {
            if !known.contains(source) {
                issues.push(Issue::error(
                    path,
                    *line,
                    format!(
                        "form `{}`: source `{source}` does not exist (run `frontdesk check` to list the ids)",
                        form.name
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[custom_cake]
title = "Custom cake order"
phrasings = ["I'd like a custom cake"]
sources = ["faq.md#do-you-make-custom-cakes"]

[[custom_cake.fields]]
name = "date"
ask = "What date do you need it for?"
type = "date"
min_days_ahead = 7

[[custom_cake.fields]]
name = "servings"
ask = "How many people should it serve?"
type = "integer"
min = 6
max = 200
units = ["people"]

[[custom_cake.fields]]
name = "flavour"
ask = "Which flavour?"
type = "choice"
choices = ["vanilla", "chocolate"]

[[custom_cake.fields]]
name = "design"
ask = "Tell us about the design."
type = "text"
required = false
"#;

    fn errors_of(text: &str) -> Vec<String> {
        let mut issues = Vec::new();
        parse("forms.toml", text, &mut issues);
        issues.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn a_good_form_parses_with_defaults() {
        let mut issues = Vec::new();
        let forms = parse("forms.toml", GOOD, &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        let form = &forms[0];
        assert_eq!(form.escalate_as, Reason::HighValue);
        assert!(form.confirm);
        assert_eq!(form.fields.len(), 4);
        assert_eq!(form.fields[0].min_days_ahead, Some(7));
        assert!(!form.fields[3].required);
        assert_eq!(form.fields[1].label, "Servings");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = GOOD.replace("min = 6", "minimum = 6");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("forms.toml:17:"), "{}", errors[0]);
        assert!(errors[0].contains("minimum"), "{}", errors[0]);
    }

    #[test]
    fn min_above_max_empty_choices_and_bad_names_are_errors() {
        let text = GOOD
            .replace("min = 6", "min = 300")
            .replace("choices = [\"vanilla\", \"chocolate\"]", "choices = []")
            .replace("name = \"design\"", "name = \"Design Notes\"");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("min (300) is greater than max (200)"));
        assert!(errors[0].starts_with("forms.toml:17:"), "{}", errors[0]);
        assert!(errors[1].contains("`choices` is empty"));
        assert!(errors[2].contains("`Design Notes`"));
    }

    #[test]
    fn a_missing_source_is_reported_at_its_line() {
        let mut issues = Vec::new();
        let forms = parse("forms.toml", GOOD, &mut issues);
        check_sources("forms.toml", &forms, &[], &mut issues);
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0].to_string().starts_with("forms.toml:5:"),
            "{}",
            issues[0]
        );
    }
}
