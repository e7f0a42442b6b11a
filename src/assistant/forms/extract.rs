//! Taking field values from a message: each field kind read from the text
//! (dates against the message's `today`, counts with their units, listed
//! choices, times, phones, emails, photos, free text), each value checked
//! against the field's limits, and the state updated with what was taken.
//!
//! Free text only ever goes into the field that was asked for; an unusable
//! value becomes the one combined re-ask, never a guess.

use super::classify::{wants_to_skip, words};
use super::state::{FieldState, FormState};
use super::values::{
    read_email, read_phone, read_photo, read_photo_not_received, read_time, strip_name_lead_in,
    without_photo_markers,
};
use super::Message;
use crate::assistant::dates::{self, DateRead};
use crate::knowledge::forms::{Field, FieldKind, Form};
use jiff::civil::Date;
use serde_json::Value;

/// What one field makes of one message.
#[derive(Debug, Clone, PartialEq)]
enum Extracted {
    Nothing,
    Value(Value),
    /// Something for this field that cannot be used; the text is the one
    /// combined re-ask (why, and the question again).
    Invalid(String),
    Skip,
}

pub(super) struct Reader<'a> {
    message: &'a Message<'a>,
    form: &'a Form,
    /// The message with its date mentions blanked, for counts.
    without_dates: String,
    date: DateRead,
}

impl<'a> Reader<'a> {
    pub(super) fn new(message: &'a Message<'a>, form: &'a Form) -> Self {
        let (date, spans) =
            dates::read_date_with_spans(message.text, message.today, message.month_first);
        let mut without_dates = message.text.to_string();
        for (start, end) in spans.iter().rev() {
            without_dates.replace_range(*start..*end, &" ".repeat(end - start));
        }
        Reader {
            message,
            form,
            without_dates,
            date,
        }
    }

    fn title(&self) -> String {
        self.form.title.to_lowercase()
    }

    fn extract(&self, field: &Field, asked: bool) -> Extracted {
        let text = self.message.text;
        if asked && !field.required && wants_to_skip(text) {
            return Extracted::Skip;
        }
        match field.kind {
            FieldKind::Date => self.date_value(field, asked),
            FieldKind::Integer => self.integer_value(field, asked),
            FieldKind::Choice => self.choice_value(field, asked),
            FieldKind::Time => match read_time(text) {
                Some(time) => Extracted::Value(Value::String(time)),
                None if asked => Extracted::Invalid(format!(
                    "Sorry, I didn't catch a time there (for example 2pm or 14:30). {}",
                    field.ask
                )),
                None => Extracted::Nothing,
            },
            FieldKind::Phone => match read_phone(text, self.message.month_first) {
                Some(phone) => Extracted::Value(Value::String(phone)),
                None if asked => Extracted::Invalid(format!(
                    "That doesn't look like a phone number; could you send it with the area code? {}",
                    field.ask
                )),
                None => Extracted::Nothing,
            },
            FieldKind::Email => match read_email(text) {
                Some(email) => Extracted::Value(Value::String(email)),
                None if asked => Extracted::Invalid(format!(
                    "That doesn't look like an email address. {}",
                    field.ask
                )),
                None => Extracted::Nothing,
            },
            FieldKind::Photo => match (read_photo(text), read_photo_not_received(text)) {
                (Some(id), _) => Extracted::Value(Value::String(id)),
                // A photo came but was not kept: say why, and ask again.
                (None, Some(reason)) => Extracted::Invalid(format!(
                    "Sorry, your photo didn't come through: {reason}. {}",
                    field.ask
                )),
                // An optional photo is asked once: any other answer moves on.
                (None, None) if asked && !field.required => Extracted::Skip,
                (None, None) if asked => Extracted::Invalid(format!(
                    "I couldn't find a photo in that message. {}",
                    field.ask
                )),
                (None, None) => Extracted::Nothing,
            },
            FieldKind::Text if asked => {
                // The words around a photo; the photo is its own field's.
                let words = without_photo_markers(text);
                let value = if field.name == "name" {
                    strip_name_lead_in(&words)
                } else {
                    words
                };
                if !value.is_empty() {
                    Extracted::Value(Value::String(value))
                } else if !field.required && read_photo(text).is_some() {
                    // A photo alone answers "tell us about the design".
                    Extracted::Skip
                } else if read_photo_not_received(text).is_some() {
                    // Only a photo that did not come: the photo field says so.
                    Extracted::Nothing
                } else {
                    Extracted::Invalid(field.ask.clone())
                }
            }
            FieldKind::Text => Extracted::Nothing,
        }
    }

    fn date_value(&self, field: &Field, asked: bool) -> Extracted {
        let today = self.message.today;
        let date = match self.date {
            DateRead::None if asked => {
                return Extracted::Invalid(format!(
                    "Sorry, I didn't catch a date there. {}",
                    field.ask
                ))
            }
            DateRead::None => return Extracted::Nothing,
            DateRead::Unsure => {
                return Extracted::Invalid(format!(
                "I want to be sure I have the right day: which date do you mean (for example {})?",
                dates::format_date(
                    today
                        .checked_add(
                            jiff::Span::new().days(field.min_days_ahead.unwrap_or(1).max(1))
                        )
                        .unwrap_or(today),
                    today
                )
            ))
            }
            DateRead::One(date) => date,
        };
        let days_between = date
            .since(today)
            .map(|span| span.get_days() as i64)
            .unwrap_or(0);
        if days_between < 0 {
            return Extracted::Invalid(format!(
                "{} has already passed. {}",
                dates::format_date(date, today),
                field.ask
            ));
        }
        let open = |d: Date| !field.open_days_only || (self.message.open_on)(d);
        if let Some(min) = field.min_days_ahead {
            if days_between < min {
                let mut earliest = today
                    .checked_add(jiff::Span::new().days(min))
                    .unwrap_or(today);
                for _ in 0..14 {
                    if open(earliest) {
                        break;
                    }
                    earliest = earliest.tomorrow().unwrap_or(earliest);
                }
                return Extracted::Invalid(format!(
                    "We need at least {min} days' notice for a {}, so the earliest date is {}. Which date works for you?",
                    self.title(),
                    dates::format_date(earliest, today)
                ));
            }
        }
        if let Some(max) = field.max_days_ahead {
            if days_between > max {
                return Extracted::Invalid(format!(
                    "We take these up to {max} days ahead, and {} is further out than that. Which date works for you?",
                    dates::format_date(date, today)
                ));
            }
        }
        if !open(date) {
            return Extracted::Invalid(format!(
                "We're closed on {}. Which other date works for you?",
                dates::format_date(date, today)
            ));
        }
        Extracted::Value(Value::String(date.to_string()))
    }

    fn integer_value(&self, field: &Field, asked: bool) -> Extracted {
        let units: Vec<String> = if field.units.is_empty() {
            vec![
                "people".into(),
                "persons".into(),
                "ppl".into(),
                "guests".into(),
            ]
        } else {
            field.units.clone()
        };
        let with_unit = dates::counts_with_unit(&self.without_dates, &units);
        let mut values: Vec<i64> = with_unit.clone();
        if values.is_empty() && asked {
            values = dates::counts(&self.without_dates)
                .into_iter()
                .map(|c| c.0)
                .collect();
        }
        values.dedup();
        let value = match values.as_slice() {
            [] if asked => {
                return Extracted::Invalid(format!(
                    "Sorry, I didn't catch a number there. {}",
                    field.ask
                ))
            }
            [] => return Extracted::Nothing,
            [one] => *one,
            _ if asked => return Extracted::Invalid(format!("Just to be sure: {}", field.ask)),
            _ => return Extracted::Nothing,
        };
        let (min, max) = (field.min, field.max);
        if min.is_some_and(|m| value < m) || max.is_some_and(|m| value > m) {
            let range = match (min, max) {
                (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => String::new(),
            };
            return Extracted::Invalid(format!(
                "For a {} the {} needs to be {range}. {}",
                self.title(),
                field.label.to_lowercase(),
                field.ask
            ));
        }
        Extracted::Value(Value::from(value))
    }

    fn choice_value(&self, field: &Field, asked: bool) -> Extracted {
        let message = format!(" {} ", words(self.message.text).join(" "));
        let message_words = words(self.message.text);
        let mut found: Vec<&String> = field
            .choices
            .iter()
            .filter(|choice| {
                let choice_words = words(choice);
                if message.contains(&format!(" {} ", choice_words.join(" "))) {
                    return true;
                }
                // One typo per long word when the question asked for it: "choclate".
                asked
                    && choice_words.iter().all(|cw| {
                        message_words.iter().any(|mw| {
                            mw == cw || (cw.len() >= 5 && crate::text::within_one_edit(mw, cw))
                        })
                    })
            })
            .collect();
        // "red velvet" also contains nothing shorter; "chocolate" inside
        // "chocolate fudge" is fine. Drop choices contained in a longer match.
        let longer: Vec<String> = found.iter().map(|c| c.to_lowercase()).collect();
        found.retain(|c| {
            !longer
                .iter()
                .any(|l| l != &c.to_lowercase() && l.contains(&c.to_lowercase()))
        });
        if found.is_empty() && asked {
            // "lemon" for "lemon raspberry", "velvet", "overhaul": a word of
            // four letters or more that only one choice has.
            let word_owners = |word: &str| {
                field
                    .choices
                    .iter()
                    .filter(|c| words(c).iter().any(|cw| cw == word))
                    .count()
            };
            found = field
                .choices
                .iter()
                .filter(|choice| {
                    words(choice).iter().any(|cw| {
                        cw.len() >= 4
                            && word_owners(cw) == 1
                            && message_words.iter().any(|mw| {
                                mw == cw || (cw.len() >= 5 && crate::text::within_one_edit(mw, cw))
                            })
                    })
                })
                .collect();
        }
        match found.as_slice() {
            [one] => Extracted::Value(Value::String((*one).clone())),
            [] if asked => Extracted::Invalid(format!(
                "We can do {}. {}",
                join_or(&field.choices),
                field.ask
            )),
            many if asked => {
                let names: Vec<String> = many.iter().map(|c| (*c).clone()).collect();
                Extracted::Invalid(format!("Which one would you like: {}?", join_or(&names)))
            }
            _ => Extracted::Nothing,
        }
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Takes what a message gives: the asked fields leniently, the others only
/// from unmistakable values (a date, "20 people", a listed choice, a phone
/// number, an email), never free text. `overwrite` lets a correction replace
/// filled values. Returns whether anything was taken and the first re-ask.
pub(super) fn take_values(
    reader: &Reader,
    form: &Form,
    state: &mut FormState,
    overwrite: bool,
) -> (bool, Option<String>) {
    let mut taken = false;
    let mut invalid: Option<String> = None;
    let asked: Vec<String> = state.asking.clone();
    for field in &form.fields {
        let is_asked = asked.contains(&field.name);
        let current = state
            .fields
            .get(&field.name)
            .cloned()
            .unwrap_or(FieldState::Empty);
        let filled = matches!(current, FieldState::Filled { .. } | FieldState::Skipped);
        if filled && !overwrite {
            continue;
        }
        // Free text only into the one field asked (and never on a correction
        // of another field's value).
        if field.kind == FieldKind::Text && (!is_asked || (filled && overwrite)) {
            continue;
        }
        // With two questions out, a bare number or choice belongs to whichever
        // of them takes it; an asked date field stays strict about "nothing".
        let lenient = is_asked && !(filled && overwrite);
        match reader.extract(field, lenient) {
            Extracted::Value(value) => {
                state
                    .fields
                    .insert(field.name.clone(), FieldState::Filled { value });
                taken = true;
            }
            Extracted::Skip => {
                state.fields.insert(field.name.clone(), FieldState::Skipped);
                taken = true;
            }
            Extracted::Invalid(reask) => {
                // "Nothing for this field" is only a failed answer when the
                // message gave nothing at all; decided by the caller.
                let attempts = match current {
                    FieldState::Rejected { attempts } => attempts,
                    _ => 0,
                };
                if invalid.is_none() {
                    invalid = Some(reask);
                }
                if !filled {
                    state.fields.insert(
                        field.name.clone(),
                        FieldState::Rejected {
                            attempts: attempts + 1,
                        },
                    );
                }
            }
            Extracted::Nothing => {}
        }
    }
    (taken, invalid)
}
