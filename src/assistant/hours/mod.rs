//! Questions about being open at a time ("are you open now?", "what time do
//! you close today?", "open on Christmas?", "are you open tomorrow morning?"),
//! answered from the hours calculator ([`crate::knowledge::hours`]) at the
//! message's time instead of with the weekly table; and the sentence every
//! hand-over ends with, saying honestly when a person will reply.
//!
//! A message is an hours question when it is about being open (open, close,
//! shut, hours, "how late", "till when") *and* names a time: now, today,
//! tonight, tomorrow, a weekday, a date, a holiday the owner's closures or
//! special hours name, or a clock time. Without a time reference it is left to
//! retrieval, so "what are your hours?" still gets the owner's weekly table.
//!
//! Pure: the time is passed in. Replies state only the owner's times and the
//! dates business.toml writes out, so they pass the grounding verifier; the
//! caller checks each sentence anyway.
//!
//! Split by concern: `lexicon` is the shared word splitter and names,
//! `read` tells whether a message is an hours question and what it asks,
//! `when` reads the time it names, `answer` writes the computed reply with
//! `phrases` naming days and times, and `handover` writes the reply-time
//! sentence. The question and answer types live here.

mod answer;
mod handover;
mod lexicon;
mod phrases;
mod read;
mod when;

#[cfg(test)]
mod tests;

pub use answer::{answer, unsettled};
pub use handover::{handover_message, reply_time};
pub use read::{about_opening, read, read_for};

use crate::domain::SourceId;
use jiff::civil::Date;

/// What the customer wants to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asks {
    /// "are you open…?": yes or no.
    IsOpen,
    /// "are you closed…?": yes or no, the other way round.
    IsClosed,
    /// "what time do you close…?", "how late…?", "till when…?"
    Closes,
    /// "what time do you open…?", "how early…?"
    Opens,
    /// "what are your hours today?", "when are you open on Sunday?"
    Hours,
}

/// A part of a day, by its usual clock window (minutes since midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayPart {
    Morning,
    Lunch,
    Afternoon,
    Evening,
    Night,
}

impl DayPart {
    fn window(self) -> (u16, u16) {
        match self {
            DayPart::Morning => (5 * 60, 12 * 60),
            DayPart::Lunch => (12 * 60, 14 * 60),
            DayPart::Afternoon => (12 * 60, 17 * 60),
            DayPart::Evening => (17 * 60, 21 * 60),
            DayPart::Night => (21 * 60, 24 * 60),
        }
    }

    fn name(self) -> &'static str {
        match self {
            DayPart::Morning => "in the morning",
            DayPart::Lunch => "at lunchtime",
            DayPart::Afternoon => "in the afternoon",
            DayPart::Evening => "in the evening",
            DayPart::Night => "at night",
        }
    }

    /// Whether a bare hour ("around 7") in this part is after noon.
    fn afternoon_clock(self) -> bool {
        !matches!(self, DayPart::Morning)
    }
}

/// A clock time the customer named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Minutes after the day's midnight; 1440 is the midnight that ends it.
    pub minutes: u16,
    /// "till 8", "before 8": open just before that time.
    pub until: bool,
}

/// The time the question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    Day {
        date: Date,
        part: Option<DayPart>,
        clock: Option<Clock>,
        /// "on Sundays": the weekly pattern; `date` is the next ordinary one.
        weekly: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoursQuestion {
    pub asks: Asks,
    pub when: When,
}

/// The computed reply, one sentence at a time so the caller can drop a
/// sentence the verifier does not support (the first one must pass).
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedAnswer {
    pub sentences: Vec<String>,
    /// `business.toml#hours`, with `business.toml#closures` first when a
    /// closed date is the answer.
    pub sources: Vec<SourceId>,
}
