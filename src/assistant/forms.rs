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

use super::dates::{self, DateRead};
use crate::domain::{Action, Reason, SourceId};
use crate::knowledge::forms::{Field, FieldKind, Form};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// After this many failed answers to one field the form is handed to a person.
pub const MAX_ATTEMPTS: u32 = 3;

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
    fn new(form: &Form, stage: Stage) -> Self {
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

    fn value(&self, name: &str) -> Option<&Value> {
        match self.fields.get(name) {
            Some(FieldState::Filled { value }) => Some(value),
            _ => None,
        }
    }

    /// Fields still needed, in the form's order.
    fn missing<'f>(&self, form: &'f Form) -> Vec<&'f Field> {
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

/// "what size…", "how do I…": asking for information, not placing a request.
fn starts_with_question_word(text: &str) -> bool {
    const LEAD_INS: [&str; 8] = ["and", "also", "so", "ok", "okay", "hi", "hey", "hello"];
    const INFORMATION: [&str; 12] = [
        "what", "whats", "how", "which", "when", "where", "why", "who", "is", "are", "do", "does",
    ];
    words(text)
        .iter()
        .find(|w| !LEAD_INS.contains(&w.as_str()))
        .is_some_and(|w| INFORMATION.contains(&w.as_str()))
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

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\'', ""))
        .collect()
}

fn has_phrase(text: &str, phrases: &[&str]) -> bool {
    let padded = format!(" {} ", words(text).join(" "));
    phrases.iter().any(|p| padded.contains(&format!(" {p} ")))
}

fn is_cancel(text: &str) -> bool {
    has_phrase(
        text,
        &[
            "never mind",
            "nevermind",
            "nvm",
            "cancel",
            "cancel it",
            "forget it",
            "forget about it",
            "dont want it",
            "dont need it",
            "changed my mind",
            "no longer need",
            "stop",
            "not anymore",
            "scratch that order",
        ],
    )
}

fn is_yes(text: &str) -> bool {
    const YES: [&str; 18] = [
        "yes",
        "yep",
        "yeah",
        "yup",
        "ya",
        "y",
        "correct",
        "perfect",
        "confirm",
        "confirmed",
        "sure",
        "ok",
        "okay",
        "absolutely",
        "definitely",
        "right",
        "great",
        "good",
    ];
    let all = words(text);
    !all.is_empty()
        && all.len() <= 12
        && !is_no(text)
        && all.iter().take(3).any(|w| YES.contains(&w.as_str()))
}

fn is_no(text: &str) -> bool {
    let all = words(text);
    matches!(
        all.first().map(String::as_str),
        Some("no" | "nope" | "nah" | "not" | "wrong")
    ) || has_phrase(
        text,
        &["not quite", "not right", "thats wrong", "isnt right"],
    )
}

fn is_correction(text: &str) -> bool {
    has_phrase(
        text,
        &[
            "actually",
            "instead",
            "change",
            "make it",
            "make that",
            "i meant",
            "sorry",
            "not",
            "rather",
            "switch",
            "update",
            "wait",
            "oops",
            "correction",
        ],
    )
}

fn is_affirmative_start(text: &str) -> bool {
    is_yes(text)
        || has_phrase(
            text,
            &[
                "id like",
                "i would like",
                "i want",
                "i wanna",
                "can i order",
                "can i get",
                "lets do it",
                "please do",
                "book",
                "order one",
                "id love",
            ],
        )
}

fn wants_to_skip(text: &str) -> bool {
    let all = words(text);
    all.len() <= 6
        && has_phrase(
            text,
            &[
                "no",
                "none",
                "nope",
                "skip",
                "nothing",
                "n/a",
                "na",
                "not really",
                "no thanks",
                "dont mind",
                "up to you",
                "surprise me",
                "nothing special",
            ],
        )
}

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

struct Reader<'a> {
    message: &'a Message<'a>,
    form: &'a Form,
    /// The message with its date mentions blanked, for counts.
    without_dates: String,
    date: DateRead,
}

impl<'a> Reader<'a> {
    fn new(message: &'a Message<'a>, form: &'a Form) -> Self {
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
            FieldKind::Photo => match read_photo(text) {
                Some(id) => Extracted::Value(Value::String(id)),
                None if asked => Extracted::Invalid(format!(
                    "I couldn't find a photo in that message. {}",
                    field.ask
                )),
                None => Extracted::Nothing,
            },
            FieldKind::Text if asked => {
                let value = if field.name == "name" {
                    strip_name_lead_in(text)
                } else {
                    text.trim().to_string()
                };
                if value.is_empty() {
                    Extracted::Invalid(field.ask.clone())
                } else {
                    Extracted::Value(Value::String(value))
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

fn strip_name_lead_in(text: &str) -> String {
    let trimmed = text.trim().trim_end_matches(['.', '!']);
    let lower = trimmed.to_lowercase();
    for lead in [
        "my name is ",
        "my name's ",
        "name is ",
        "names ",
        "name's ",
        "it's ",
        "its ",
        "i'm ",
        "im ",
        "this is ",
        "call me ",
        "under ",
        "put it under ",
        "it is ",
    ] {
        if lower.starts_with(lead) {
            return trimmed[lead.len()..].trim().to_string();
        }
    }
    trimmed.to_string()
}

/// "3pm", "3:30 pm", "15:00", "noon" → "HH:MM".
fn read_time(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    if lower.contains("noon") || lower.contains("midday") {
        return Some("12:00".into());
    }
    let chars: Vec<char> = lower.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit()) {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let hours: u32 = chars[i..j].iter().collect::<String>().parse().ok()?;
            let mut minutes = 0;
            let mut k = j;
            let mut had_colon = false;
            if k + 2 < chars.len() + 1 && chars.get(k) == Some(&':') {
                let m: String = chars[k + 1..(k + 3).min(chars.len())].iter().collect();
                if let Ok(m) = m.parse::<u32>() {
                    minutes = m;
                    k += 3;
                    had_colon = true;
                }
            }
            let rest: String = chars[k..].iter().collect::<String>();
            let rest = rest.trim_start();
            let hours = if rest.starts_with("pm") || rest.starts_with("p.m") {
                Some(if hours == 12 { 12 } else { hours + 12 })
            } else if rest.starts_with("am") || rest.starts_with("a.m") {
                Some(if hours == 12 { 0 } else { hours })
            } else if had_colon {
                Some(hours)
            } else {
                None
            };
            if let Some(hours) = hours.filter(|h| *h < 24 && minutes < 60) {
                return Some(format!("{hours:02}:{minutes:02}"));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

/// A phone number in E.164: "+1 718-555-0142", "(718) 555 0142", "7185550142".
fn read_phone(text: &str, north_american: bool) -> Option<String> {
    let mut best: Option<String> = None;
    let mut current = String::new();
    let mut plus = false;
    let flush = |current: &mut String, plus: &mut bool, best: &mut Option<String>| {
        let digits = std::mem::take(current);
        let had_plus = std::mem::replace(plus, false);
        let e164 = if had_plus && (8..=15).contains(&digits.len()) {
            Some(format!("+{digits}"))
        } else if north_american && digits.len() == 10 {
            Some(format!("+1{digits}"))
        } else if north_american && digits.len() == 11 && digits.starts_with('1') {
            Some(format!("+{digits}"))
        } else {
            None
        };
        if best.is_none() {
            *best = e164;
        }
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            current.push(c);
        } else if c == '+' && current.is_empty() {
            plus = true;
        } else if matches!(c, ' ' | '-' | '.' | '(' | ')') && (!current.is_empty() || plus) {
            continue;
        } else {
            flush(&mut current, &mut plus, &mut best);
        }
    }
    flush(&mut current, &mut plus, &mut best);
    best
}

fn read_email(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| {
                !c.is_alphanumeric() && c != '@' && c != '.' && c != '_' && c != '-' && c != '+'
            })
            .trim_end_matches('.')
        })
        .find(|w| {
            let Some((user, domain)) = w.split_once('@') else {
                return false;
            };
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        .map(str::to_lowercase)
}

/// An attachment marker: `[attachment:ID]` (a stored attachment's id) or
/// `[image]` where the channel does not store images yet.
fn read_photo(text: &str) -> Option<String> {
    if let Some(start) = text.find("[attachment:") {
        let rest = &text[start + "[attachment:".len()..];
        let id: String = rest.chars().take_while(|c| *c != ']').collect();
        if !id.trim().is_empty() {
            return Some(id.trim().to_string());
        }
    }
    text.contains("[image]").then(|| "[image]".to_string())
}

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

fn view(form: &Form, state: &FormState, completed: bool) -> FormView {
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
/// message can carry both; two free-text answers could not be told apart).
fn next_asks<'f>(form: &'f Form, state: &FormState) -> Vec<&'f Field> {
    let missing = state.missing(form);
    let typed = |f: &Field| {
        matches!(
            f.kind,
            FieldKind::Date | FieldKind::Integer | FieldKind::Choice
        )
    };
    match missing.as_slice() {
        [first, second, ..] if typed(first) && typed(second) => vec![first, second],
        [first, ..] => vec![first],
        [] => Vec::new(),
    }
}

fn confirmation(form: &Form, state: &FormState, today: Date) -> String {
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

fn handover_fields(form: &Form, state: &FormState) -> FormView {
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
fn continue_form(
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

fn complete(form: &Form, state: &FormState, handover: &str) -> Step {
    Step::Reply {
        action: Action::Escalate,
        reason: Some(form.escalate_as),
        text: form.done.clone().unwrap_or_else(|| handover.to_string()),
        state: None,
        view: Some(handover_fields(form, state)),
    }
}

/// Takes what a message gives: the asked fields leniently, the others only
/// from unmistakable values (a date, "20 people", a listed choice, a phone
/// number, an email), never free text. `overwrite` lets a correction replace
/// filled values. Returns whether anything was taken and the first re-ask.
fn take_values(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::forms::parse;

    const FORMS: &str = r#"
[custom_cake]
title = "Custom cake order"
phrasings = ["I'd like a custom cake"]
sources = ["faq.md#do-you-make-custom-cakes"]

[[custom_cake.fields]]
name = "date"
ask = "What date do you need it for?"
type = "date"
min_days_ahead = 3
open_days_only = true

[[custom_cake.fields]]
name = "servings"
ask = "How many people should it serve?"
type = "integer"
min = 6
max = 200
units = ["people", "guests", "serve", "serves"]

[[custom_cake.fields]]
name = "flavour"
ask = "Which flavour would you like?"
type = "choice"
choices = ["vanilla", "chocolate", "red velvet"]

[[custom_cake.fields]]
name = "design"
ask = "Tell us about the design."
type = "text"
required = false

[[custom_cake.fields]]
name = "phone"
ask = "What's the best phone number to reach you?"
type = "phone"
"#;

    fn forms() -> Vec<Form> {
        let mut issues = Vec::new();
        let forms = parse("forms.toml", FORMS, &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        forms
    }

    fn closed_mondays(date: Date) -> bool {
        date.weekday() != jiff::civil::Weekday::Monday
    }

    /// Replays customer messages from a Tuesday (2026-03-10), as eval does.
    fn run(messages: &[&str]) -> (Step, Option<FormState>) {
        let forms = forms();
        let faq_source = SourceId("faq.md#do-you-deliver".into());
        let mut state = None;
        let mut last = Step::Pass;
        for (i, text) in messages.iter().enumerate() {
            let starts = i == 0;
            let answer = text
                .contains("deliver")
                .then_some(("Yes, we deliver within 5 miles.", &faq_source));
            let message = Message {
                text,
                today: "2026-03-10".parse().unwrap(),
                month_first: true,
                open_on: &closed_mondays,
                rule: text.contains("person").then_some(Reason::HumanRequested),
                answer,
                phrasing_match: starts.then_some((0, 0.9)),
                answer_score: 0.0,
            };
            last = step(
                &forms,
                state.clone(),
                &message,
                "A person will get back to you.",
            );
            state = match &last {
                Step::Reply { state, .. } => state.clone(),
                Step::Offer { state } => Some(state.clone()),
                Step::Pass => None,
            };
        }
        (last, state)
    }

    fn reply_of(step: &Step) -> (&Action, &str, Option<&FormView>) {
        match step {
            Step::Reply {
                action, text, view, ..
            } => (action, text.as_str(), view.as_ref()),
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn one_message_fills_three_fields() {
        let (step, state) =
            run(&["I'd like a custom cake for Saturday the 14th for 20 people, chocolate"]);
        let (action, text, view) = reply_of(&step);
        assert_eq!(*action, Action::Collect);
        let view = view.unwrap();
        assert_eq!(view.fields["date"], "2026-03-14");
        assert_eq!(view.fields["servings"], 20);
        assert_eq!(view.fields["flavour"], "chocolate");
        assert_eq!(view.missing, vec!["design", "phone"]);
        assert!(text.ends_with("Tell us about the design."), "{text}");
        assert_eq!(state.unwrap().asking, vec!["design"]);
    }

    #[test]
    fn too_little_notice_is_one_combined_reask() {
        let (step, _) = run(&["I'd like a custom cake", "tomorrow"]);
        let (_, text, view) = reply_of(&step);
        assert!(
            text.contains("at least 3 days' notice")
                && text.contains("Friday 13 March")
                && text.ends_with("Which date works for you?"),
            "{text}"
        );
        assert!(!view.unwrap().fields.contains_key("date"));
    }

    #[test]
    fn free_text_never_lands_in_a_field_that_was_not_asked() {
        let (step, _) = run(&["I'd like a custom cake", "a unicorn with rainbow colours"]);
        let (_, _, view) = reply_of(&step);
        assert!(view.unwrap().fields.is_empty());
    }

    #[test]
    fn a_question_mid_form_is_answered_and_the_question_repeated() {
        let (step, state) = run(&["I'd like a custom cake", "do you deliver to brooklyn?"]);
        let (action, text, _) = reply_of(&step);
        assert_eq!(*action, Action::Collect);
        assert!(text.starts_with("Yes, we deliver"), "{text}");
        assert!(text.contains("What date do you need it for?"), "{text}");
        assert_eq!(state.unwrap().asking, vec!["date", "servings"]);
    }

    #[test]
    fn a_correction_replaces_the_date() {
        let (step, _) = run(&[
            "I'd like a custom cake for Saturday the 14th",
            "actually make it sunday the 15th",
        ]);
        let (_, _, view) = reply_of(&step);
        assert_eq!(view.unwrap().fields["date"], "2026-03-15");
    }

    #[test]
    fn never_mind_cancels_and_clears() {
        let (step, state) = run(&["I'd like a custom cake for Saturday the 14th", "never mind"]);
        let (action, text, _) = reply_of(&step);
        assert_eq!(*action, Action::Answer);
        assert!(text.contains("cancelled"));
        assert!(state.is_none());
    }

    #[test]
    fn three_failed_answers_hand_over_with_what_was_collected() {
        let (step, state) = run(&[
            "I'd like a custom cake for 20 people",
            "hmm not sure",
            "whenever really",
            "idk",
        ]);
        let (action, _, view) = reply_of(&step);
        assert_eq!(*action, Action::Escalate);
        assert_eq!(view.unwrap().fields["servings"], 20);
        assert!(state.is_none());
    }

    #[test]
    fn the_confirmation_reads_dates_back_and_yes_escalates() {
        let (step, _) = run(&[
            "I'd like a custom cake for Saturday the 14th for 20 people, chocolate",
            "a unicorn",
            "718-555-0142",
        ]);
        let (action, text, _) = reply_of(&step);
        assert_eq!(*action, Action::Collect);
        assert!(text.contains("- Date: Saturday 14 March"), "{text}");
        assert!(text.contains("- Phone: +17185550142"), "{text}");
        let (step, state) = run(&[
            "I'd like a custom cake for Saturday the 14th for 20 people, chocolate",
            "a unicorn",
            "718-555-0142",
            "yes that's right",
        ]);
        let (action, _, view) = reply_of(&step);
        assert_eq!(*action, Action::Escalate);
        let view = view.unwrap();
        assert!(view.completed);
        assert_eq!(view.fields["design"], "a unicorn");
        assert!(state.is_none());
    }

    #[test]
    fn a_request_for_a_person_hands_over_mid_form() {
        let (step, _) = run(&[
            "I'd like a custom cake for 20 people",
            "can I talk to a person",
        ]);
        let (action, _, view) = reply_of(&step);
        assert_eq!(*action, Action::Escalate);
        assert_eq!(view.unwrap().fields["servings"], 20);
    }

    #[test]
    fn phones_times_and_emails() {
        assert_eq!(
            read_phone("call me at (718) 555-0142", true).as_deref(),
            Some("+17185550142")
        );
        assert_eq!(
            read_phone("+44 20 7946 0958", false).as_deref(),
            Some("+442079460958")
        );
        assert_eq!(read_phone("20 people", true), None);
        assert_eq!(read_time("around 3:30 pm").as_deref(), Some("15:30"));
        assert_eq!(read_time("for 20 people"), None);
        assert_eq!(
            read_email("it's Jo.Smith@Example.com.").as_deref(),
            Some("jo.smith@example.com")
        );
    }
}
