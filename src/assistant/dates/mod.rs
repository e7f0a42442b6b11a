//! Dates and counts in customers' words: "tomorrow", "this Saturday", "next
//! Friday", "the 14th", "Saturday the 14th", "March 14", "14/3", "a week from
//! Sunday", "in two weeks"; "twenty", "a dozen", "two dozen".
//!
//! Pure: every date resolves against an explicit business-local `today`, never
//! the clock. A wrong date is worse than none, so anything that could mean two
//! days ("Friday the 14th" when the 14th is a Saturday, "the 20th or 21st",
//! "Tuesday" said on a Tuesday) resolves to [`DateRead::Unsure`] and the form
//! asks. The conventions (a bare weekday is the next one after today; "next
//! <weekday>" is that day of the following Monday-to-Sunday week; n/n is
//! month/day in an American time zone unless the first number is over 12) are
//! documented in docs/knowledge-format.md and measured on eval/dates.jsonl.
//!
//! Split by concern: `words` splits a message into words and reads single
//! words (weekdays, months, day numbers), `reader` finds the date mentions
//! and resolves each one, `counts` reads counts; this module joins the
//! mentions into one [`DateRead`] and writes dates back ([`format_date`]).

mod counts;
mod reader;
mod words;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use counts::{counts, counts_with_unit};

use jiff::civil::Date;
use reader::Reader;
use words::tokenize;

/// What a message says about one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRead {
    /// No date mentioned.
    None,
    /// Exactly one date.
    One(Date),
    /// A date is mentioned but could be more than one day: ask.
    Unsure,
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "Saturday 14 March" (the year only when it is not `today`'s).
pub fn format_date(date: Date, today: Date) -> String {
    let weekday = format!("{:?}", date.weekday());
    let month = MONTH_NAMES[(date.month() - 1) as usize];
    if date.year() == today.year() {
        format!("{weekday} {} {month}", date.day())
    } else {
        format!("{weekday} {} {month} {}", date.day(), date.year())
    }
}

/// Whether n/n dates are month first for a business in this time zone.
pub fn month_first_in(timezone: &str) -> bool {
    timezone.starts_with("America/") || timezone.starts_with("US/")
}

/// The date a message asks for, read against the business-local `today`.
pub fn read_date(text: &str, today: Date, month_first: bool) -> DateRead {
    let (read, _) = read_date_with_spans(text, today, month_first);
    read
}

/// As [`read_date`], with the byte spans of every date mention (so a count
/// reader can skip "the 14th").
pub fn read_date_with_spans(
    text: &str,
    today: Date,
    month_first: bool,
) -> (DateRead, Vec<(usize, usize)>) {
    let tokens = tokenize(text);
    let reader = Reader {
        tokens: &tokens,
        today,
        month_first,
    };
    let mentions = reader.mentions();
    let spans = mentions.iter().map(|m| (m.start, m.end)).collect();
    if mentions.is_empty() {
        return (DateRead::None, spans);
    }
    let mut dates: Vec<Date> = Vec::new();
    for mention in &mentions {
        match mention.date {
            Some(date) => {
                if !dates.contains(&date) {
                    dates.push(date);
                }
            }
            None => return (DateRead::Unsure, spans),
        }
    }
    let read = if dates.len() == 1 {
        DateRead::One(dates[0])
    } else {
        DateRead::Unsure
    };
    (read, spans)
}
