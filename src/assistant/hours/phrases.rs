//! How replies name days and times: "today", "on Sunday", "on Thursday
//! December 24", "6pm today", "2am tonight", "tomorrow at 7am", a closure
//! with its reason, and the source ids a computed answer cites.
//!
//! Only the owner's times and the dates business.toml writes out, so every
//! phrase passes the grounding verifier; nothing here decides an answer.

use super::lexicon::WEEKDAY_NAMES;
use crate::domain::SourceId;
use crate::knowledge::business::format_clock;
use crate::knowledge::hours::{DayHours, Period, Schedule};
use jiff::civil::{Date, DateTime, Weekday};

pub(super) fn hours_source() -> SourceId {
    SourceId::new("business.toml", "hours")
}

pub(super) fn closures_source() -> SourceId {
    SourceId::new("business.toml", "closures")
}

fn weekday_name(weekday: Weekday) -> &'static str {
    WEEKDAY_NAMES
        .iter()
        .find(|(_, day)| *day == weekday)
        .map(|(name, _)| *name)
        .unwrap_or("")
}

pub(super) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "Monday", "Sunday", ...
pub(super) fn weekday_title(weekday: Weekday) -> String {
    capitalized(weekday_name(weekday))
}

/// How a reply names `date`: "today", "tomorrow", "on Sunday" within the week,
/// "on Thursday December 24" for a date business.toml writes out, otherwise
/// "that day (a Saturday)" (no day number the owner's text does not state).
pub(super) fn on_day(date: Date, today: Date, schedule: &Schedule) -> String {
    let days_ahead = (date - today).get_days();
    if date == today {
        "today".into()
    } else if today.tomorrow().ok() == Some(date) {
        "tomorrow".into()
    } else if (0..7).contains(&days_ahead) {
        format!("on {}", weekday_title(date.weekday()))
    } else if matches!(schedule.day(date), DayHours::Special(_))
        || schedule
            .closures()
            .iter()
            .any(|c| c.first == date && c.last == date)
    {
        format!("on {}", date.strftime("%A %B %-d"))
    } else {
        format!("that day (a {})", weekday_title(date.weekday()))
    }
}

/// "today at 1pm", "tomorrow at 7am", "on Tuesday at 7am", "on Monday August 17 at 7am".
pub(super) fn opening_phrase(period: &Period, today: Date) -> String {
    let date = period.opens_local.date();
    let time = format_clock(minutes_of(period.opens_local));
    let days_ahead = (date - today).get_days();
    if date == today {
        format!("today at {time}")
    } else if today.tomorrow().ok() == Some(date) {
        format!("tomorrow at {time}")
    } else if (0..7).contains(&days_ahead) {
        format!("on {} at {time}", weekday_title(date.weekday()))
    } else {
        format!("on {} at {time}", date.strftime("%A %B %-d"))
    }
}

/// "6pm today", "2am tonight" (past midnight), "8pm on Friday".
pub(super) fn closing_phrase(period: &Period, today: Date) -> String {
    let date = period.closes_local.date();
    let minutes = minutes_of(period.closes_local);
    if date == today {
        format!("{} today", format_clock(minutes))
    } else if today.tomorrow().ok() == Some(date) && minutes <= 12 * 60 {
        if minutes == 0 {
            "midnight tonight".into()
        } else {
            format!("{} tonight", format_clock(minutes))
        }
    } else if today.tomorrow().ok() == Some(date) {
        format!("{} tomorrow", format_clock(minutes))
    } else {
        format!(
            "{} on {}",
            format_clock(minutes),
            weekday_title(date.weekday())
        )
    }
}

pub(super) fn minutes_of(local: DateTime) -> u16 {
    local.hour() as u16 * 60 + local.minute() as u16
}

/// "on Friday December 25 (Christmas Day)", "from Monday August 10 to Sunday August 16 (Summer break)".
pub(super) fn closure_phrase(first: Date, last: Date, reason: Option<&str>) -> String {
    let dates = if first == last {
        format!("on {}", first.strftime("%A %B %-d"))
    } else {
        format!(
            "from {} to {}",
            first.strftime("%A %B %-d"),
            last.strftime("%A %B %-d")
        )
    };
    match reason {
        Some(reason) => format!("{dates} ({reason})"),
        None => dates,
    }
}
