//! The time references an hours question may name: a calendar date ("dec
//! 25", "the 14th"), a closure or special day by its reason ("Christmas"), a
//! weekday or a weekly habit ("sundays"), a part of the day, a clock time
//! (a bare hour gets am or pm from the part of the day or the business's week).
//!
//! Each reader looks at the words alone (and the schedule's names and
//! week): never at the clock, and never at what the question asks.

use super::lexicon::{stem, words, WEEKDAY_NAMES};
use super::{Clock, DayPart};
use crate::knowledge::business::OpenSpan;
use crate::knowledge::hours::Schedule;
use jiff::civil::{Date, Weekday};

/// Words before a bare hour that make it a clock time ("around 10").
const CLOCK_PREPOSITIONS: &[&str] = &[
    "at", "around", "round", "about", "by", "after", "past", "from", "like", "@", "til", "till",
    "until", "before",
];
const MONTHS: &[(&str, i8)] = &[
    ("january", 1),
    ("jan", 1),
    ("february", 2),
    ("feb", 2),
    ("march", 3),
    ("mar", 3),
    ("april", 4),
    ("apr", 4),
    ("may", 5),
    ("june", 6),
    ("jun", 6),
    ("july", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("october", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
];

/// Words of a closure's reason that do not name the day ("Staff holiday after
/// Christmas" is known by "after" and "christmas").
const GENERIC_REASON_WORDS: &[&str] = &[
    "day", "days", "the", "of", "and", "for", "our", "we", "are", "closed", "holiday", "holidays",
    "break", "off", "a", "an", "staff", "team", "shop", "store", "early", "late", "closing",
    "hours", "special", "in", "on", "at",
];

fn day_number(word: &str) -> Option<i8> {
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))
        .unwrap_or(word);
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

fn month_of(word: &str) -> Option<i8> {
    MONTHS
        .iter()
        .find(|(name, _)| *name == word)
        .map(|(_, month)| *month)
}

/// The next date (today included) with this month and day.
fn next_month_day(today: Date, month: i8, day: i8) -> Option<Date> {
    [today.year(), today.year() + 1]
        .into_iter()
        .filter_map(|year| Date::new(year, month, day).ok())
        .find(|date| *date >= today)
}

/// "dec 25", "december 25th", "25 dec", "the 26th of december", "the 14th".
pub(super) fn explicit_date(words: &[String], today: Date) -> Option<Date> {
    for i in 0..words.len() {
        let word = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str).unwrap_or("");
        let after_of = words.get(i + 2).map(String::as_str).unwrap_or("");
        if let Some(month) = month_of(word) {
            if let Some(day) = day_number(next) {
                return next_month_day(today, month, day);
            }
        }
        if let Some(day) = day_number(word) {
            let month =
                month_of(next).or_else(|| (next == "of").then(|| month_of(after_of)).flatten());
            if let Some(month) = month {
                // "may" only as a month next to a day number: "may 5th", "5 may".
                return next_month_day(today, month, day);
            }
            let ordinal = word.len() > 2 && !word.ends_with(|c: char| c.is_ascii_digit());
            if ordinal && i > 0 && words[i - 1] == "the" {
                let mut date = today;
                for _ in 0..62 {
                    if date.day() == day {
                        return Some(date);
                    }
                    date = date.tomorrow().ok()?;
                }
            }
        }
    }
    None
}

/// A closure or special day the message names by its reason ("Christmas").
pub(super) fn named_day(words: &[String], today: Date, schedule: &Schedule) -> Option<Date> {
    let message: Vec<String> = words.iter().map(|w| stem(w)).collect();
    let mentions_eve = message.iter().any(|w| w == "eve");
    let mut best: Option<(usize, Date)> = None;
    let named = schedule
        .closures()
        .iter()
        .filter(|c| c.last >= today)
        .map(|c| (c.reason.as_deref(), c.first.max(today)))
        .chain(
            schedule
                .special_hours()
                .iter()
                .filter(|s| s.date >= today)
                .map(|s| (s.reason.as_deref(), s.date)),
        );
    for (reason, date) in named {
        let Some(reason) = reason else { continue };
        let distinctive: Vec<String> = self::words(reason)
            .iter()
            .filter(|w| !GENERIC_REASON_WORDS.contains(&w.as_str()))
            .map(|w| stem(w))
            .collect();
        if distinctive.is_empty() || (mentions_eve && !distinctive.iter().any(|w| w == "eve")) {
            continue;
        }
        if distinctive.iter().all(|w| message.contains(w)) {
            let better = best.is_none_or(|(count, when)| {
                distinctive.len() > count || (distinctive.len() == count && date < when)
            });
            if better {
                best = Some((distinctive.len(), date));
            }
        }
    }
    best.map(|(_, date)| date)
}

/// The weekday a message names, and whether as a habit ("sundays").
pub(super) fn weekday_named(words: &[String]) -> Option<(Weekday, bool, bool)> {
    for (i, word) in words.iter().enumerate() {
        let word = word.as_str();
        let (root, plural) = match word.strip_suffix('s') {
            Some(root) if WEEKDAY_NAMES.iter().any(|(n, _)| *n == root) => (root, true),
            _ => (word, false),
        };
        let root = match root {
            "weds" | "wednes" => "wednesday",
            "thur" => "thursday",
            other => other,
        };
        if let Some((_, weekday)) = WEEKDAY_NAMES.iter().find(|(name, _)| *name == root) {
            let next = i > 0 && words[i - 1] == "next";
            return Some((*weekday, plural, next));
        }
    }
    None
}

/// The part of the day a message names.
pub(super) fn day_part(words: &[String], late_or_early: bool) -> Option<DayPart> {
    for word in words {
        let part = match word.as_str() {
            "morning" | "mornings" => DayPart::Morning,
            "lunch" | "lunchtime" | "midday" => DayPart::Lunch,
            "afternoon" | "afternoons" => DayPart::Afternoon,
            "evening" | "evenings" | "tonight" | "tonite" => DayPart::Evening,
            "night" | "nights" => DayPart::Night,
            "late" if late_or_early => DayPart::Evening,
            "early" if late_or_early => DayPart::Morning,
            _ => continue,
        };
        return Some(part);
    }
    None
}

/// A clock time: "7pm", "7:30", "at 10", "10ish", "7 o'clock", "noon",
/// "midnight". A bare hour gets am or pm from the part of the day, else the
/// reading inside the business's week, else 7-11 am and 12-6 pm.
pub(super) fn clock(words: &[String], part: Option<DayPart>, schedule: &Schedule) -> Option<Clock> {
    for (i, word) in words.iter().enumerate() {
        let word = word.as_str();
        let before = if i > 0 { words[i - 1].as_str() } else { "" };
        let next = words.get(i + 1).map(String::as_str).unwrap_or("");
        let until = matches!(before, "till" | "til" | "until" | "before");
        match word {
            "noon" => {
                return Some(Clock {
                    minutes: 12 * 60,
                    until,
                })
            }
            "midnight" => {
                return Some(Clock {
                    minutes: 24 * 60,
                    until,
                })
            }
            _ => {}
        }
        let (number, suffix) = word.split_at(
            word.find(|c: char| !(c.is_ascii_digit() || c == ':'))
                .unwrap_or(word.len()),
        );
        if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let meridiem = match (suffix, next) {
            ("am", _) | ("", "am") => Some(false),
            ("pm", _) | ("", "pm") => Some(true),
            ("ish", _) | ("", "ish" | "o'clock" | "oclock") => None,
            ("", _) if number.contains(':') || CLOCK_PREPOSITIONS.contains(&before) => None,
            _ => continue,
        };
        let (hours, minutes) = number.split_once(':').unwrap_or((number, "0"));
        let (Ok(hours), Ok(minutes)) = (hours.parse::<u16>(), minutes.parse::<u16>()) else {
            continue;
        };
        if minutes >= 60 || hours > 24 || (meridiem.is_some() && !(1..=12).contains(&hours)) {
            continue;
        }
        let hours = match meridiem {
            Some(pm) => hours % 12 + if pm { 12 } else { 0 },
            None if number.contains(':') || hours == 0 || hours > 12 => hours,
            None => resolve_bare_hour(hours, part, until, schedule),
        };
        return Some(Clock {
            minutes: hours * 60 + minutes,
            until,
        });
    }
    None
}

fn resolve_bare_hour(hours: u16, part: Option<DayPart>, until: bool, schedule: &Schedule) -> u16 {
    let (morning, afternoon) = (hours % 12, hours % 12 + 12);
    if let Some(part) = part {
        return if part.afternoon_clock() {
            afternoon
        } else {
            morning
        };
    }
    if until {
        return afternoon; // "open till 7?" is about the evening
    }
    let spans: Vec<OpenSpan> = WEEKDAY_NAMES
        .iter()
        .flat_map(|(_, day)| schedule.weekly(*day).iter().copied())
        .collect();
    let inside = |h: u16| spans.iter().any(|s| s.opens <= h * 60 && h * 60 < s.closes);
    match (inside(morning), inside(afternoon)) {
        (true, false) => morning,
        (false, true) => afternoon,
        _ if (1..=6).contains(&hours) || hours == 12 => afternoon,
        _ => morning,
    }
}
