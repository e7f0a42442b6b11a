//! The words of a message as the date reader sees them: the tokenizer
//! (lower-cased words with their byte spans, `3/14` and `2026-03-14` kept
//! whole) and what one word says on its own (a weekday, a month, a day of the
//! month, a year).
//!
//! Never resolves a date: nothing here knows `today`.

use jiff::civil::Weekday;

/// One lower-cased word of the message with its byte span.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) text: String,
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (offset, c) in text.char_indices() {
        // Keep `/` and `-` inside numbers (3/14, 2026-03-14) and `@`/`.` out of dates.
        let joins = c.is_alphanumeric()
            || ((c == '/' || c == '-')
                && current.chars().last().is_some_and(|l| l.is_ascii_digit())
                && text[offset + 1..]
                    .chars()
                    .next()
                    .is_some_and(|n| n.is_ascii_digit()));
        if joins {
            if current.is_empty() {
                start = offset;
            }
            current.extend(c.to_lowercase());
        } else if c == '\'' || c == '’' {
            // "year's" → "years"; keep the word going.
        } else if !current.is_empty() {
            tokens.push(Token {
                text: std::mem::take(&mut current),
                start,
                end: offset,
            });
        }
    }
    if !current.is_empty() {
        tokens.push(Token {
            text: current,
            start,
            end: text.len(),
        });
    }
    tokens
}

pub(super) fn weekday_of(word: &str) -> Option<Weekday> {
    Some(match word {
        "monday" | "mon" | "mondays" => Weekday::Monday,
        "tuesday" | "tue" | "tues" | "tuesdays" => Weekday::Tuesday,
        "wednesday" | "wed" | "weds" | "wednesdays" => Weekday::Wednesday,
        "thursday" | "thu" | "thur" | "thurs" | "thursdays" => Weekday::Thursday,
        "friday" | "fri" | "fridays" => Weekday::Friday,
        "saturday" | "sat" | "saturdays" => Weekday::Saturday,
        "sunday" | "sundays" => Weekday::Sunday,
        _ => return None,
    })
}

pub(super) fn month_of(word: &str) -> Option<i8> {
    Some(match word {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" | "mar" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    })
}

/// A day of the month written as "14th", "1st", "14" (with `bare`), "fourteenth".
pub(super) fn day_number(word: &str, bare: bool) -> Option<i8> {
    let digits: String = word.chars().take_while(|c| c.is_ascii_digit()).collect();
    let rest = &word[digits.len()..];
    let value: Option<i8> = if !digits.is_empty() {
        let n: i8 = digits.parse().ok()?;
        match rest {
            "st" | "nd" | "rd" | "th" => Some(n),
            "" if bare => Some(n),
            _ => None,
        }
    } else {
        ORDINAL_WORDS
            .iter()
            .position(|w| *w == word)
            .map(|p| p as i8 + 1)
    };
    value.filter(|n| (1..=31).contains(n))
}

const ORDINAL_WORDS: [&str; 31] = [
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
    "twentyfirst",
    "twentysecond",
    "twentythird",
    "twentyfourth",
    "twentyfifth",
    "twentysixth",
    "twentyseventh",
    "twentyeighth",
    "twentyninth",
    "thirtieth",
    "thirtyfirst",
];

pub(super) fn is_year(word: &str) -> Option<i16> {
    let year: i16 = word.parse().ok()?;
    (2000..=2100).contains(&year).then_some(year)
}
