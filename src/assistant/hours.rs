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

use crate::domain::SourceId;
use crate::knowledge::business::{format_clock, format_spans, EscalationSettings, OpenSpan};
use crate::knowledge::hours::{DayHours, Period, Schedule, Status};
use jiff::civil::{Date, DateTime, Weekday};
use jiff::Timestamp;

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

const OPEN_WORDS: &[&str] = &["open", "opened", "opens", "opening"];
const CLOSE_WORDS: &[&str] = &["close", "closes", "closing", "closed", "shut", "shuts"];
/// "open to suggestions", "open a franchise", "open my box" are not about hours.
const NOT_AFTER_OPEN: &[&str] = &["to", "a", "an", "my", "your", "it", "this", "that", "them"];
const NOW_WORDS: &[&str] = &["now", "rn", "currently", "atm", "still", "yet", "anymore"];
const TOMORROW_WORDS: &[&str] = &[
    "tomorrow",
    "tomorow",
    "tommorow",
    "tommorrow",
    "tmrw",
    "tmr",
    "2mrw",
    "2moro",
];
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
const WEEKDAY_NAMES: [(&str, Weekday); 7] = [
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];
/// Words of a closure's reason that do not name the day ("Staff holiday after
/// Christmas" is known by "after" and "christmas").
const GENERIC_REASON_WORDS: &[&str] = &[
    "day", "days", "the", "of", "and", "for", "our", "we", "are", "closed", "holiday", "holidays",
    "break", "off", "a", "an", "staff", "team", "shop", "store", "early", "late", "closing",
    "hours", "special", "in", "on", "at",
];
/// Other names customers use for a word of a holiday's name.
const HOLIDAY_ALIASES: &[(&str, &str)] = &[("xmas", "christmas"), ("x-mas", "christmas")];

/// Lower-cased words; `'` kept inside words, `a.m.`/`p.m.` joined.
fn words(text: &str) -> Vec<String> {
    let lowered = text
        .to_lowercase()
        .replace(['’', '‘'], "'")
        .replace("a.m.", "am")
        .replace("p.m.", "pm");
    lowered
        .split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '\'' || c == '@'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == ':'))
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// A word stripped of a plural or possessive ending, for name matching.
fn stem(word: &str) -> String {
    let word = word.trim_end_matches("'s");
    let word = HOLIDAY_ALIASES
        .iter()
        .find(|(alias, _)| *alias == word)
        .map_or(word, |(_, name)| name);
    match word.strip_suffix('s') {
        Some(root) if root.len() >= 3 => root.to_string(),
        _ => word.to_string(),
    }
}

fn is_quantity(word: &str) -> bool {
    (!word.is_empty() && word.chars().all(|c| c.is_ascii_digit()))
        || matches!(
            word,
            "few" | "couple" | "many" | "two" | "three" | "four" | "24" | "several" | "extra"
        )
}

/// What a message asks about being open, or `None` when it is not about that.
fn topic(words: &[String]) -> Option<(Asks, bool)> {
    let at = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let before = |i: usize| if i == 0 { "" } else { at(i - 1) };
    let phrase = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    let has = |w: &str| words.iter().any(|x| x == w);
    let open_word = words
        .iter()
        .enumerate()
        .any(|(i, w)| OPEN_WORDS.contains(&w.as_str()) && !NOT_AFTER_OPEN.contains(&at(i + 1)));
    let close_word = words.iter().enumerate().any(|(i, w)| {
        CLOSE_WORDS.contains(&w.as_str()) && !matches!(at(i + 1), "to" | "by") && before(i) != "how"
    });
    let hours_word = words
        .iter()
        .enumerate()
        .any(|(i, w)| w == "hours" && !is_quantity(before(i)));
    let how_late = phrase("how", "late");
    let how_early = phrase("how", "early");
    let till_when = words.windows(2).any(|p| {
        matches!(p[0].as_str(), "till" | "until" | "til")
            && matches!(p[1].as_str(), "when" | "what")
    });
    if !(open_word || close_word || hours_word || how_late || how_early || till_when) {
        return None;
    }
    let asks_time = phrase("what", "time") || has("when");
    let open_as_verb = has("do") || has("does") || has("opens") || has("opening");
    let asks = if how_late || till_when || (close_word && asks_time && !open_word) {
        Asks::Closes
    } else if how_early || (open_word && asks_time && !close_word && open_as_verb) {
        Asks::Opens
    } else if (open_word && asks_time) || (hours_word && !open_word && !close_word) {
        Asks::Hours
    } else if close_word && !open_word {
        Asks::IsClosed
    } else {
        Asks::IsOpen
    };
    // "open late" / "open early" says which part of the day.
    let late_or_early = words.windows(2).any(|p| {
        (OPEN_WORDS.contains(&p[0].as_str()) && matches!(p[1].as_str(), "late" | "early"))
            || (matches!(p[0].as_str(), "late" | "early") && OPEN_WORDS.contains(&p[1].as_str()))
    });
    Some((asks, late_or_early))
}

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
fn explicit_date(words: &[String], today: Date) -> Option<Date> {
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
fn named_day(words: &[String], today: Date, schedule: &Schedule) -> Option<Date> {
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
fn weekday_named(words: &[String]) -> Option<(Weekday, bool, bool)> {
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
fn day_part(words: &[String], late_or_early: bool) -> Option<DayPart> {
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
fn clock(words: &[String], part: Option<DayPart>, schedule: &Schedule) -> Option<Clock> {
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

/// Words that name the business itself as the subject ("is the shop open?").
const OUR_PLACE: &[&str] = &[
    "shop", "store", "place", "business", "bakery", "cafe", "café", "counter", "kitchen", "office",
    "front", "desk", "team", "owner", "staff",
];

/// Verbs and adverbs between a subject and its open word.
const SUBJECT_FILLER: &[&str] = &[
    "be",
    "still",
    "even",
    "usually",
    "normally",
    "currently",
    "actually",
    "really",
    "ever",
    "going",
    "gonna",
    "to",
    "guys",
    "folks",
    "all",
];

/// "is the post office open today?", "what time does the bank close": the
/// open word's subject is another place (a "the …" subject with a word that
/// neither names the business nor is one of [`OUR_PLACE`]).
fn subject_is_elsewhere(words: &[String], schedule_name: &[String]) -> bool {
    let Some(open_at) = words
        .iter()
        .position(|w| OPEN_WORDS.contains(&w.as_str()) || CLOSE_WORDS.contains(&w.as_str()))
    else {
        return false;
    };
    let Some(the) = words[..open_at]
        .iter()
        .rposition(|w| w == "the" || w == "that")
    else {
        return false;
    };
    // The subject's own words: "will the shop be open" is about "shop".
    let subject: Vec<&String> = words[the + 1..open_at]
        .iter()
        .filter(|w| !SUBJECT_FILLER.contains(&w.as_str()))
        .collect();
    // Only a subject right after the verb: "is the …", "does the …".
    let verb_before = the > 0
        && matches!(
            words[the - 1].as_str(),
            "is" | "are" | "does" | "do" | "will" | "was" | "when" | "time"
        );
    verb_before
        && !subject.is_empty()
        && subject.iter().any(|w| {
            let word = stem(w);
            !OUR_PLACE.contains(&w.as_str()) && !schedule_name.iter().any(|n| stem(n) == word)
        })
}

/// Whether a text is about being open at all ("opening hours", "do you close
/// early"), with or without a time.
pub fn about_opening(text: &str) -> bool {
    topic(&words(text)).is_some()
}

/// Reads an hours question from a customer message at local time `now`.
pub fn read(message: &str, now: DateTime, schedule: &Schedule) -> Option<HoursQuestion> {
    read_for(message, now, schedule, "")
}

/// [`read`] for a business called `name` ("is Jasmine's open today?" is about it).
pub fn read_for(
    message: &str,
    now: DateTime,
    schedule: &Schedule,
    name: &str,
) -> Option<HoursQuestion> {
    let words = words(message);
    let (asks, late_or_early) = topic(&words)?;
    if subject_is_elsewhere(&words, &self::words(name)) {
        return None;
    }
    let today = now.date();
    let has = |w: &str| words.iter().any(|x| x == w);
    let phrase = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    let part = day_part(&words, late_or_early);
    let clock = clock(&words, part, schedule);

    let weekday = weekday_named(&words);
    let tomorrow = words.iter().any(|w| TOMORROW_WORDS.contains(&w.as_str()));
    let date = explicit_date(&words, today)
        .or_else(|| named_day(&words, today, schedule))
        .map(|date| (date, false))
        .or_else(|| {
            weekday.map(|(weekday, plural, next)| {
                let mut date = if next {
                    today.tomorrow().unwrap_or(today)
                } else {
                    today
                };
                while date.weekday() != weekday {
                    date = date.tomorrow().unwrap_or(date);
                }
                if plural {
                    // The habit: the next occurrence with the ordinary weekly hours.
                    let mut ordinary = date;
                    for _ in 0..8 {
                        if matches!(schedule.day(ordinary), DayHours::Weekly(_)) {
                            return (ordinary, true);
                        }
                        ordinary = ordinary
                            .checked_add(jiff::Span::new().days(7))
                            .unwrap_or(ordinary);
                    }
                }
                (date, plural)
            })
        })
        .or_else(|| {
            if phrase("after", "tomorrow") {
                today
                    .checked_add(jiff::Span::new().days(2))
                    .ok()
                    .map(|d| (d, false))
            } else if tomorrow {
                today.tomorrow().ok().map(|d| (d, false))
            } else if has("today")
                || has("tonight")
                || has("tonite")
                || has("later")
                || ["morning", "afternoon", "evening"]
                    .iter()
                    .any(|p| phrase("this", p))
            {
                Some((today, false))
            } else {
                None
            }
        });
    let when = match (date, clock) {
        (Some((date, weekly)), clock) => When::Day {
            date,
            part,
            clock,
            weekly,
        },
        (None, Some(clock)) => {
            // "are you open at 7?" asked at 8pm is about tomorrow's 7.
            let now_minutes = now.hour() as u16 * 60 + now.minute() as u16;
            let date = if clock.minutes + 30 < now_minutes {
                today.tomorrow().unwrap_or(today)
            } else {
                today
            };
            When::Day {
                date,
                part,
                clock: Some(clock),
                weekly: false,
            }
        }
        (None, None)
            if NOW_WORDS.iter().any(|w| has(w))
                || phrase("right", "now")
                || phrase("the", "moment") =>
        {
            When::Now
        }
        (None, None) => return None,
    };
    Some(HoursQuestion { asks, when })
}

fn hours_source() -> SourceId {
    SourceId::new("business.toml", "hours")
}

fn closures_source() -> SourceId {
    SourceId::new("business.toml", "closures")
}

fn weekday_name(weekday: Weekday) -> &'static str {
    WEEKDAY_NAMES
        .iter()
        .find(|(_, day)| *day == weekday)
        .map(|(name, _)| *name)
        .unwrap_or("")
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "Monday", "Sunday", ...
fn weekday_title(weekday: Weekday) -> String {
    capitalized(weekday_name(weekday))
}

/// How a reply names `date`: "today", "tomorrow", "on Sunday" within the week,
/// "on Thursday December 24" for a date business.toml writes out, otherwise
/// "that day (a Saturday)" (no day number the owner's text does not state).
fn on_day(date: Date, today: Date, schedule: &Schedule) -> String {
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
fn opening_phrase(period: &Period, today: Date) -> String {
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
fn closing_phrase(period: &Period, today: Date) -> String {
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

fn minutes_of(local: DateTime) -> u16 {
    local.hour() as u16 * 60 + local.minute() as u16
}

/// "on Friday December 25 (Christmas Day)", "from Monday August 10 to Sunday August 16 (Summer break)".
fn closure_phrase(first: Date, last: Date, reason: Option<&str>) -> String {
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

struct Writer<'a> {
    schedule: &'a Schedule,
    asks: Asks,
    now: Timestamp,
    today: Date,
    sentences: Vec<String>,
    closed_date: bool,
}

impl Writer<'_> {
    /// "Yes — " / "No — " for yes-or-no questions ("are you closed?" flips it).
    fn verdict(&self, open: bool) -> &'static str {
        match (self.asks, open) {
            (Asks::IsOpen, true) | (Asks::IsClosed, false) => "Yes — ",
            (Asks::IsOpen, false) | (Asks::IsClosed, true) => "No — ",
            _ => "",
        }
    }

    fn say(&mut self, verdict: &str, text: String) {
        let sentence = if verdict.is_empty() {
            capitalized(&text)
        } else {
            format!("{verdict}{text}")
        };
        self.sentences.push(sentence);
    }

    /// "We open again tomorrow at 7am." when that is within the coming week
    /// (named by its weekday; a later date is left to the owner's tables).
    fn next_opening_after(&mut self, instant: Timestamp) {
        if let Some(next) = self.schedule.next_opening(instant) {
            if (next.opens_local.date() - self.today).get_days() < 7 {
                let phrase = opening_phrase(&next, self.today);
                self.say("", format!("we open again {phrase}."));
            }
        }
    }

    fn end_of(&self, date: Date) -> Timestamp {
        date.tomorrow()
            .ok()
            .and_then(|next| self.schedule.instant(next.at(0, 0, 0, 0)))
            .unwrap_or(self.now)
    }

    /// The answer for a date on which nothing opens.
    fn closed_day(&mut self, date: Date, weekly: bool) {
        let verdict = self.verdict(false);
        match self.schedule.day(date) {
            DayHours::Closed(closure) => {
                self.closed_date = true;
                let phrase = closure_phrase(closure.first, closure.last, closure.reason.as_deref());
                self.say(verdict, format!("we're closed {phrase}."));
            }
            _ => {
                let day = weekday_title(date.weekday());
                if date == self.today {
                    self.say(verdict, "we're closed today.".into());
                } else if self.today.tomorrow().ok() == Some(date) {
                    self.say(verdict, "we're closed tomorrow.".into());
                } else {
                    self.say(verdict, format!("we're closed on {day}s."));
                }
            }
        }
        let days_ahead = (date - self.today).get_days();
        if !weekly && (0..7).contains(&days_ahead) {
            self.next_opening_after(self.end_of(date));
        }
    }

    fn now(&mut self) {
        match self.schedule.status(self.now) {
            Status::Open(period) => {
                let closing = closing_phrase(&period, self.today);
                match self.asks {
                    Asks::Opens => self.say("", format!("we're open now, until {closing}.")),
                    Asks::Closes => self.say("", format!("we close at {closing}.")),
                    _ => {
                        let verdict = self.verdict(true);
                        self.say(verdict, format!("we're open until {closing}."));
                    }
                }
            }
            Status::Closed { next } => {
                if let DayHours::Closed(closure) = self.schedule.day(self.today) {
                    self.closed_date = true;
                    let phrase =
                        closure_phrase(closure.first, closure.last, closure.reason.as_deref());
                    let verdict = self.verdict(false);
                    self.say(verdict, format!("we're closed {phrase}."));
                } else {
                    let verdict = self.verdict(false);
                    self.say(verdict, "we're closed right now.".into());
                }
                if next.is_some() {
                    self.next_opening_after(self.now);
                }
            }
        }
    }

    fn day(&mut self, date: Date, part: Option<DayPart>, clock: Option<Clock>, weekly: bool) {
        let spans: Vec<OpenSpan> = self.schedule.day(date).spans().to_vec();
        let day = if weekly {
            format!("on {}s", weekday_title(date.weekday()))
        } else {
            on_day(date, self.today, self.schedule)
        };
        if spans.is_empty() {
            return self.closed_day(date, weekly);
        }
        let hours = format_spans(&spans);
        let (first, last) = (spans[0], spans[spans.len() - 1]);
        match self.asks {
            Asks::Closes => {
                if date == self.today && !weekly {
                    if let Some(period) = self.schedule.period_at(self.now) {
                        let closing = closing_phrase(&period, self.today);
                        return self.say("", format!("we close at {closing}."));
                    }
                    if self.now_minutes() >= last.closes.min(24 * 60) {
                        self.say(
                            "",
                            format!("we closed at {} today.", format_clock(last.closes)),
                        );
                        return self.next_opening_after(self.now);
                    }
                }
                let also = if spans.len() > 1 {
                    format!(" (we're open {hours})")
                } else {
                    String::new()
                };
                self.say(
                    "",
                    format!("we close at {} {day}{also}.", format_clock(last.closes)),
                );
            }
            Asks::Opens => {
                if date == self.today && !weekly {
                    if let Some(period) = self.schedule.period_at(self.now) {
                        let closing = closing_phrase(&period, self.today);
                        return self.say("", format!("we're open now, until {closing}."));
                    }
                    if let Some(next) = self.schedule.next_opening(self.now) {
                        if next.date == date {
                            let time = format_clock(minutes_of(next.opens_local));
                            return self.say("", format!("we open at {time} today."));
                        }
                        self.say(
                            "",
                            format!("we closed at {} today.", format_clock(last.closes)),
                        );
                        return self.next_opening_after(self.now);
                    }
                }
                self.say(
                    "",
                    format!(
                        "we open at {} {day} (until {}).",
                        format_clock(first.opens),
                        format_clock(last.closes)
                    ),
                );
            }
            Asks::Hours => self.say("", format!("we're open {hours} {day}.")),
            Asks::IsOpen | Asks::IsClosed => {
                self.is_open_on(date, &spans, &day, part, clock, weekly)
            }
        }
    }

    fn now_minutes(&self) -> u16 {
        minutes_of(self.schedule.local(self.now))
    }

    fn is_open_on(
        &mut self,
        date: Date,
        spans: &[OpenSpan],
        day: &str,
        part: Option<DayPart>,
        clock: Option<Clock>,
        weekly: bool,
    ) {
        let hours = format_spans(spans);
        let (first, last) = (spans[0], spans[spans.len() - 1]);
        if let Some(clock) = clock {
            let minutes = if clock.until {
                clock.minutes.saturating_sub(1)
            } else {
                clock.minutes
            };
            let day_start = date.at(0, 0, 0, 0);
            let local = day_start
                .checked_add(jiff::Span::new().minutes(i64::from(minutes)))
                .unwrap_or(day_start);
            let Some(instant) = self.schedule.instant(local) else {
                return;
            };
            return match self.schedule.period_at(instant) {
                Some(period) => {
                    let verdict = self.verdict(true);
                    if clock.until {
                        let closes = format_clock(minutes_of(period.closes_local));
                        self.say(verdict, format!("we're open until {closes} {day}."));
                    } else {
                        self.say(verdict, format!("we're open {hours} {day}."));
                    }
                }
                None => {
                    let verdict = self.verdict(false);
                    if minutes < first.opens {
                        let opens = format_clock(first.opens);
                        self.say(verdict, format!("we don't open until {opens} {day}."));
                    } else if minutes >= last.closes {
                        let closes = format_clock(last.closes);
                        self.say(verdict, format!("we close at {closes} {day}."));
                    } else {
                        self.say(verdict, "we're closed then.".into());
                        self.say("", format!("we're open {hours} {day}."));
                    }
                }
            };
        }
        if let Some(part) = part {
            let (from, to) = part.window();
            let overlaps = spans.iter().any(|s| s.opens < to && s.closes > from);
            if !overlaps {
                let verdict = self.verdict(false);
                return self.say(
                    verdict,
                    format!("we're open {hours} {day}, so not {}.", part.name()),
                );
            }
        }
        if date == self.today && !weekly && part.is_none() {
            if let Some(period) = self.schedule.period_at(self.now) {
                let verdict = self.verdict(true);
                let closing = closing_phrase(&period, self.today);
                return self.say(verdict, format!("we're open until {closing}."));
            }
            if self.now_minutes() >= last.closes.min(24 * 60) {
                let verdict = self.verdict(false);
                self.say(
                    verdict,
                    format!("we closed at {} today.", format_clock(last.closes)),
                );
                return self.next_opening_after(self.now);
            }
        }
        let verdict = self.verdict(true);
        self.say(verdict, format!("we're open {hours} {day}."));
    }
}

/// The computed reply to `question` at instant `now`.
pub fn answer(question: &HoursQuestion, schedule: &Schedule, now: Timestamp) -> ComputedAnswer {
    let mut writer = Writer {
        schedule,
        asks: question.asks,
        now,
        today: schedule.local(now).date(),
        sentences: Vec::new(),
        closed_date: false,
    };
    match question.when {
        When::Now => writer.now(),
        When::Day {
            date,
            part,
            clock,
            weekly,
        } => writer.day(date, part, clock, weekly),
    }
    let sources = if writer.closed_date {
        vec![closures_source(), hours_source()]
    } else {
        vec![hours_source()]
    };
    ComputedAnswer {
        sentences: writer.sentences,
        sources,
    }
}

/// Whether the question is about a date whose answer the owner's files do not
/// settle: the same month and day is closed in another year but this year's
/// date is not listed (answered from retrieval instead).
pub fn unsettled(question: &HoursQuestion, schedule: &Schedule) -> bool {
    match question.when {
        When::Day {
            date,
            weekly: false,
            ..
        } => schedule.closed_in_other_years(date),
        _ => false,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::business::{parse_hours, Closure, SpecialHours};
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    /// The sample bakery's week, with its Christmas closures and a special Christmas Eve.
    fn bakery() -> Schedule {
        let weekly = [
            "closed",
            "7:00-18:00",
            "7:00-18:00",
            "7:00-18:00",
            "7:00-20:00",
            "8:00-20:00",
            "8:00-14:00",
        ]
        .map(|d| parse_hours(d).unwrap());
        let closure = |first: Date, last: Date, reason: &str| Closure {
            first,
            last,
            reason: Some(reason.into()),
        };
        Schedule::new(
            weekly,
            vec![
                closure(date(2026, 12, 25), date(2026, 12, 25), "Christmas Day"),
                closure(
                    date(2026, 12, 26),
                    date(2026, 12, 26),
                    "Staff holiday after Christmas",
                ),
                closure(date(2027, 1, 1), date(2027, 1, 1), "New Year's Day"),
            ],
            vec![SpecialHours {
                date: date(2026, 12, 24),
                spans: parse_hours("7:00-15:00").unwrap(),
                reason: Some("Christmas Eve".into()),
            }],
            TimeZone::get("America/New_York").unwrap(),
        )
    }

    /// Asks `message` at local time `now` and returns the reply.
    fn ask(message: &str, now: DateTime) -> String {
        let schedule = bakery();
        let question = read(message, now, &schedule)
            .unwrap_or_else(|| panic!("not read as an hours question: {message}"));
        let instant = schedule.instant(now).unwrap();
        answer(&question, &schedule, instant).sentences.join(" ")
    }

    // Tuesday 1 December 2026.
    fn tuesday(hour: i8, minute: i8) -> DateTime {
        date(2026, 12, 1).at(hour, minute, 0, 0)
    }

    #[test]
    fn open_now_says_until_when() {
        assert_eq!(
            ask("are you open now?", tuesday(14, 30)),
            "Yes — we're open until 6pm today."
        );
        assert_eq!(
            ask("open rn?", tuesday(7, 0)),
            "Yes — we're open until 6pm today."
        );
        assert_eq!(
            ask("r u still open", tuesday(18, 0)),
            "No — we're closed right now. We open again tomorrow at 7am."
        );
        assert_eq!(
            ask("are you open right now", date(2026, 11, 30).at(10, 0, 0, 0)),
            "No — we're closed right now. We open again tomorrow at 7am."
        );
    }

    #[test]
    fn closing_time_today() {
        assert_eq!(
            ask("what time do you close today?", tuesday(9, 0)),
            "We close at 6pm today."
        );
        assert_eq!(
            ask("what time do you close today?", tuesday(19, 0)),
            "We closed at 6pm today. We open again tomorrow at 7am."
        );
        assert_eq!(
            ask("how late are you open tonight", tuesday(12, 0)),
            "We close at 6pm today."
        );
        assert_eq!(
            ask("and sunday till when", tuesday(12, 0)),
            "We close at 2pm on Sunday."
        );
    }

    #[test]
    fn a_weekday_and_a_weekly_habit() {
        assert_eq!(
            ask("open on Sunday?", tuesday(12, 0)),
            "Yes — we're open 8am to 2pm on Sunday."
        );
        assert_eq!(
            ask("r u guys open mondays", tuesday(12, 0)),
            "No — we're closed on Mondays."
        );
        assert_eq!(
            ask("are you closed on monday?", tuesday(12, 0)),
            "Yes — we're closed on Mondays."
        );
        assert_eq!(
            ask("what time do you shut on fridays", tuesday(12, 0)),
            "We close at 8pm on Fridays."
        );
        assert_eq!(
            ask("how early do u open saturday", tuesday(12, 0)),
            "We open at 8am on Saturday (until 8pm)."
        );
    }

    #[test]
    fn holidays_by_name_and_by_date() {
        assert_eq!(
            ask("open on Christmas?", tuesday(12, 0)),
            "No — we're closed on Friday December 25 (Christmas Day)."
        );
        assert_eq!(
            ask("xmas day open?", tuesday(12, 0)),
            "No — we're closed on Friday December 25 (Christmas Day)."
        );
        assert_eq!(
            ask("will you be open on the 26th of december?", tuesday(12, 0)),
            "No — we're closed on Saturday December 26 (Staff holiday after Christmas)."
        );
        assert_eq!(
            ask("are you open christmas eve", tuesday(12, 0)),
            "Yes — we're open 7am to 3pm on Thursday December 24."
        );
        assert_eq!(
            ask("r u open jan 1st", tuesday(12, 0)),
            "No — we're closed on Friday January 1 (New Year's Day)."
        );
        let schedule = bakery();
        let question = read("xmas day open?", tuesday(12, 0), &schedule).unwrap();
        let sources = answer(
            &question,
            &schedule,
            schedule.instant(tuesday(12, 0)).unwrap(),
        )
        .sources;
        assert_eq!(sources[0].as_str(), "business.toml#closures");
    }

    #[test]
    fn tomorrow_morning_and_parts_of_the_day() {
        assert_eq!(
            ask("are you open tomorrow morning?", tuesday(20, 0)),
            "Yes — we're open 7am to 6pm tomorrow."
        );
        assert_eq!(
            ask("are you open sunday evening", tuesday(12, 0)),
            "No — we're open 8am to 2pm on Sunday, so not in the evening."
        );
        assert_eq!(
            ask("open tomorrow?", date(2026, 11, 29).at(12, 0, 0, 0)),
            "No — we're closed tomorrow. We open again on Tuesday at 7am."
        );
    }

    #[test]
    fn clock_times() {
        assert_eq!(
            ask(
                "Are you guys open Sunday morning? hoping to come by around 7",
                tuesday(12, 0)
            ),
            "No — we don't open until 8am on Sunday."
        );
        assert_eq!(
            ask("open late friday? like 7ish", tuesday(12, 0)),
            "Yes — we're open 7am to 8pm on Friday."
        );
        assert_eq!(
            ask("are you open till 8 on saturday", tuesday(12, 0)),
            "Yes — we're open until 8pm on Saturday."
        );
        assert_eq!(
            ask("are you open after midnight tonight?", tuesday(12, 0)),
            "No — we close at 6pm today."
        );
        assert_eq!(
            ask("are you open at 9pm?", tuesday(12, 0)),
            "No — we close at 6pm today."
        );
    }

    #[test]
    fn questions_without_a_time_or_about_something_else_are_not_read() {
        let schedule = bakery();
        for message in [
            "what are your hours?",
            "when are you open?",
            "what time does the post office on court st close",
            "are you open to custom orders tomorrow",
            "running super late, what happens if i dont make it before u close??",
            "how close are you to the subway today",
            "can I rent a bike for 4 hours tomorrow",
            "open on the fourth of july or nah",
            "is the post office open today?",
            "what time does the bank close tonight",
        ] {
            assert_eq!(read(message, tuesday(12, 0), &schedule), None, "{message}");
        }
    }

    #[test]
    fn the_business_itself_may_be_the_subject() {
        let schedule = bakery();
        for message in [
            "is the shop open today?",
            "is Jasmine's Bakery open on sunday",
            "what time does the bakery close today",
            "Will the shop be open Jan 1st or are you taking the day off?",
            "hours today?",
        ] {
            assert!(
                read_for(message, tuesday(12, 0), &schedule, "Jasmine's Bakery").is_some(),
                "{message}"
            );
        }
    }

    #[test]
    fn a_date_closed_in_another_year_is_unsettled() {
        let schedule = bakery();
        let question = read(
            "open on dec 25?",
            date(2027, 2, 1).at(12, 0, 0, 0),
            &schedule,
        )
        .unwrap();
        assert!(unsettled(&question, &schedule));
        let question = read("open on dec 23?", tuesday(12, 0), &schedule).unwrap();
        assert!(!unsettled(&question, &schedule));
    }

    #[test]
    fn computed_replies_pass_the_grounding_verifier() {
        let schedule = bakery();
        let hours_text = "Our opening hours:\nMonday: closed\nTuesday: 7am to 6pm\nWednesday: 7am to 6pm\nThursday: 7am to 6pm\nFriday: 7am to 8pm\nSaturday: 8am to 8pm\nSunday: 8am to 2pm\nSpecial hours:\nThursday December 24, 2026 (Christmas Eve): 7am to 3pm";
        let closures_text = "We are closed on: Friday December 25, 2026 (Christmas Day); Saturday December 26, 2026 (Staff holiday after Christmas); Friday January 1, 2027 (New Year's Day).";
        for (message, now) in [
            ("open now?", tuesday(10, 0)),
            ("open now?", tuesday(22, 0)),
            ("open on christmas?", tuesday(10, 0)),
            ("christmas eve hours?", tuesday(10, 0)),
            ("open tomorrow?", date(2026, 12, 24).at(16, 0, 0, 0)),
            (
                "what time do you close today",
                date(2026, 12, 24).at(9, 0, 0, 0),
            ),
            ("are you open sunday at 10", tuesday(10, 0)),
        ] {
            let question = read(message, now, &schedule).unwrap();
            let reply = answer(&question, &schedule, schedule.instant(now).unwrap());
            let text = reply.sentences.join(" ");
            let unsupported =
                crate::assistant::grounding::unsupported_facts(&text, &[hours_text, closures_text]);
            assert!(unsupported.is_empty(), "{message}: {text}: {unsupported:?}");
        }
    }

    fn settings(person: Option<&str>) -> EscalationSettings {
        EscalationSettings {
            person_name: person.map(String::from),
            ..EscalationSettings::default()
        }
    }

    #[test]
    fn hand_overs_say_when_a_person_replies() {
        let schedule = bakery();
        let at = |local: DateTime| schedule.instant(local).unwrap();
        let jasmine = settings(Some("Jasmine"));
        assert_eq!(
            reply_time(&schedule, at(tuesday(14, 0)), &jasmine),
            "Jasmine will reply within about 30 minutes."
        );
        assert_eq!(
            reply_time(&schedule, at(tuesday(20, 0)), &jasmine),
            "We're closed now; Jasmine will reply when we open, tomorrow at 7am."
        );
        assert_eq!(
            reply_time(&schedule, at(tuesday(17, 45)), &jasmine),
            "We close at 6pm today; if Jasmine can't reply before then, you'll hear back when we open, tomorrow at 7am."
        );
        // Sunday afternoon: Monday is closed, so Tuesday.
        assert_eq!(
            reply_time(
                &schedule,
                at(date(2026, 11, 29).at(15, 0, 0, 0)),
                &settings(None)
            ),
            "We're closed now; someone from our team will reply when we open, on Tuesday at 7am."
        );
        // Christmas Day: the 26th is closed too, Sunday the 27th opens at 8am.
        assert_eq!(
            reply_time(&schedule, at(date(2026, 12, 25).at(10, 0, 0, 0)), &jasmine),
            "We're closed now; Jasmine will reply when we open, on Sunday at 8am."
        );
        let hourly = EscalationSettings {
            reply_within_minutes: 60,
            ..jasmine.clone()
        };
        assert_eq!(
            reply_time(&schedule, at(tuesday(9, 0)), &hourly),
            "Jasmine will reply within about an hour."
        );
    }

    #[test]
    fn the_owners_hand_over_message_is_kept() {
        let schedule = bakery();
        let now = schedule.instant(tuesday(20, 0)).unwrap();
        let appended = EscalationSettings {
            handover_message: "Thanks! I've passed it to the team.".into(),
            ..settings(Some("Jasmine"))
        };
        assert_eq!(
            handover_message(&appended, Some(&schedule), now),
            "Thanks! I've passed it to the team. We're closed now; Jasmine will reply when we open, tomorrow at 7am."
        );
        let placed = EscalationSettings {
            handover_message: "Got it. {reply_time} Thanks for your patience!".into(),
            ..settings(Some("Jasmine"))
        };
        assert_eq!(
            handover_message(&placed, Some(&schedule), now),
            "Got it. We're closed now; Jasmine will reply when we open, tomorrow at 7am. Thanks for your patience!"
        );
        assert_eq!(
            handover_message(&placed, None, now),
            "Got it. Thanks for your patience!"
        );
    }

    #[test]
    fn every_day_closed_never_loops_and_says_so() {
        let weekly = ["closed"; 7].map(|d| parse_hours(d).unwrap());
        let schedule = Schedule::new(
            weekly,
            Vec::new(),
            Vec::new(),
            TimeZone::get("America/New_York").unwrap(),
        );
        let now = schedule.instant(tuesday(12, 0)).unwrap();
        assert_eq!(
            reply_time(&schedule, now, &settings(None)),
            "We're closed now; someone from our team will reply as soon as possible."
        );
        let question = read("open now?", tuesday(12, 0), &schedule).unwrap();
        assert_eq!(
            answer(&question, &schedule, now).sentences,
            vec!["No — we're closed right now.".to_string()]
        );
    }
}
