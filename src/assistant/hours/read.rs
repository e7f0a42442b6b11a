//! Reading an hours question: whether a message is about being open (and
//! whether about this business at all, not "the post office"), what it
//! asks (open? closed? when do you close?), and the time it names, combined
//! into a [`HoursQuestion`].
//!
//! Pure: the message's local time is passed in. Without a time reference a
//! message is not read here, so "what are your hours?" goes to retrieval.

use super::lexicon::{stem, words};
use super::when::{clock, day_part, explicit_date, named_day, weekday_named};
use super::{Asks, HoursQuestion, When};
use crate::knowledge::hours::{DayHours, Schedule};
use jiff::civil::DateTime;

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
    // A weekday on its own ("sunday?", "this saturday?") sent to a business
    // asks whether it is open then. "tomorrow?" alone is left to retrieval: it
    // as often means "can I come tomorrow?".
    let bare_day = (1..=2).contains(&words.len())
        && words.iter().all(|w| {
            matches!(w.as_str(), "this" | "next" | "on")
                || weekday_named(std::slice::from_ref(w)).is_some()
        })
        && words
            .iter()
            .any(|w| weekday_named(std::slice::from_ref(w)).is_some());
    if bare_day {
        return Some((Asks::IsOpen, false));
    }
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
