//! The sentence every hand-over ends with: when a person will reply, said
//! honestly from the hours (within about N minutes while open, else the next
//! opening), placed in the owner's hand-over message.
//!
//! Pure: the instant is passed in; without hours it adds nothing.

use super::phrases::{capitalized, closing_phrase, opening_phrase};
use crate::knowledge::business::EscalationSettings;
use crate::knowledge::hours::{Schedule, Status};
use jiff::Timestamp;

/// "about 30 minutes", "about an hour", "about 2 hours".
fn duration_phrase(minutes: u32) -> String {
    match minutes {
        60 => "about an hour".into(),
        m if m > 60 && m % 60 == 0 => format!("about {} hours", m / 60),
        1 => "about a minute".into(),
        m => format!("about {m} minutes"),
    }
}

/// When a person will reply, said honestly from the hours at `now`: inside
/// hours "within about N minutes", outside them the next opening.
pub fn reply_time(schedule: &Schedule, now: Timestamp, settings: &EscalationSettings) -> String {
    let who = settings
        .person_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or("someone from our team");
    let today = schedule.local(now).date();
    let within = duration_phrase(settings.reply_within_minutes);
    match schedule.status(now) {
        Status::Open(period) => {
            let deadline = now
                .checked_add(jiff::SignedDuration::from_mins(i64::from(
                    settings.reply_within_minutes,
                )))
                .unwrap_or(now);
            if deadline <= period.closes {
                return format!("{} will reply within {within}.", capitalized(who));
            }
            let closing = closing_phrase(&period, today);
            match schedule.next_opening(period.closes) {
                Some(next) => format!(
                    "We close at {closing}; if {who} can't reply before then, you'll hear back when we open, {}.",
                    opening_phrase(&next, today)
                ),
                None => format!("We close at {closing}; {who} will reply as soon as possible."),
            }
        }
        Status::Closed { next: Some(next) } => format!(
            "We're closed now; {who} will reply when we open, {}.",
            opening_phrase(&next, today)
        ),
        Status::Closed { next: None } => {
            format!("We're closed now; {who} will reply as soon as possible.")
        }
    }
}

/// The hand-over message: the owner's text, then when a person will reply. An
/// owner can place that sentence with `{reply_time}`; without hours in
/// business.toml there is nothing honest to add, and the owner's text is sent alone.
pub fn handover_message(
    settings: &EscalationSettings,
    schedule: Option<&Schedule>,
    now: Timestamp,
) -> String {
    let message = settings.handover_message.trim();
    let timing = schedule.map(|schedule| reply_time(schedule, now, settings));
    match timing {
        Some(timing) if message.contains("{reply_time}") => {
            message.replace("{reply_time}", &timing)
        }
        Some(timing) if message.is_empty() => timing,
        Some(timing) => format!("{message} {timing}"),
        None => message
            .replace("{reply_time}", "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}
