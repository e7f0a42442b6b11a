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

use jiff::civil::{Date, Weekday};
use jiff::ToSpan;

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

/// One lower-cased word of the message with its byte span.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    start: usize,
    end: usize,
}

fn tokenize(text: &str) -> Vec<Token> {
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

fn weekday_of(word: &str) -> Option<Weekday> {
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

fn month_of(word: &str) -> Option<i8> {
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

/// A day of the month written as "14th", "1st", "14" (with `bare`), "fourteenth".
fn day_number(word: &str, bare: bool) -> Option<i8> {
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

fn is_year(word: &str) -> Option<i16> {
    let year: i16 = word.parse().ok()?;
    (2000..=2100).contains(&year).then_some(year)
}

/// The first date on or after `today` that has day `day`.
fn next_day_of_month(today: Date, day: i8) -> Option<Date> {
    let mut first = today.first_of_month();
    for _ in 0..3 {
        if let Ok(date) = Date::new(first.year(), first.month(), day) {
            if date >= today {
                return Some(date);
            }
        }
        first = first.checked_add(1.month()).ok()?;
    }
    None
}

/// Month and day without a year: this year unless it has passed.
fn next_month_day(today: Date, month: i8, day: i8) -> Option<Date> {
    let this_year = Date::new(today.year(), month, day).ok();
    match this_year {
        Some(date) if date >= today => Some(date),
        _ => Date::new(today.year() + 1, month, day).ok(),
    }
}

/// The coming `weekday` after today; `None` when today is that weekday (it
/// could mean today or a week from now).
fn coming_weekday(today: Date, weekday: Weekday) -> Option<Date> {
    let ahead = (weekday.to_monday_zero_offset() - today.weekday().to_monday_zero_offset() + 7) % 7;
    (ahead != 0).then(|| today.checked_add((ahead as i64).days()).ok())?
}

/// "next <weekday>": that day in the Monday-to-Sunday week after this one.
fn next_week_weekday(today: Date, weekday: Weekday) -> Option<Date> {
    let to_monday = 7 - today.weekday().to_monday_zero_offset() as i64;
    today
        .checked_add((to_monday + weekday.to_monday_zero_offset() as i64).days())
        .ok()
}

/// A small count in digits or words at `tokens[i..]`: "2", "two", "a", "twenty five".
/// Returns the value and how many tokens it used.
fn count_at(tokens: &[Token], i: usize) -> Option<(i64, usize)> {
    let word = tokens.get(i)?.text.as_str();
    if word == "a" || word == "an" || word == "one" {
        return Some((1, 1));
    }
    if let Ok(n) = word.parse::<i64>() {
        return Some((n, 1));
    }
    number_words(tokens, i)
}

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// "twenty five", "twenty-five" (the hyphen splits the words), "a hundred",
/// "one hundred and fifty".
fn number_words(tokens: &[Token], i: usize) -> Option<(i64, usize)> {
    let word = |k: usize| tokens.get(k).map(|t| t.text.as_str());
    let small = |w: &str| -> Option<i64> {
        if let Some(p) = UNITS.iter().position(|u| *u == w) {
            return Some(p as i64);
        }
        TENS.iter()
            .position(|t| *t == w)
            .map(|p| (p as i64 + 2) * 10)
    };
    let first = word(i)?;
    let (mut value, mut used) = if first == "a" || first == "an" || first == "one" {
        if word(i + 1) != Some("hundred") {
            return None;
        }
        (100, 2)
    } else if let Some(n) = small(first) {
        let mut value = n;
        let mut used = 1;
        if (20..100).contains(&n) {
            if let Some(unit) = word(i + 1).and_then(small).filter(|u| (1..10).contains(u)) {
                value += unit;
                used += 1;
            }
        }
        if value < 10 && word(i + used) == Some("hundred") {
            value *= 100;
            used += 1;
        }
        (value, used)
    } else {
        return None;
    };
    if value >= 100 && value % 100 == 0 {
        let mut k = i + used;
        if word(k) == Some("and") {
            k += 1;
        }
        if let Some((rest, n)) = word(k)
            .and_then(small)
            .and_then(|_| number_words(tokens, k))
        {
            if rest < 100 {
                value += rest;
                used = k + n - i;
            }
        }
    }
    Some((value, used))
}

/// One date mention found in the text, or one that could mean several days.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mention {
    date: Option<Date>,
    start: usize,
    end: usize,
}

struct Reader<'a> {
    tokens: &'a [Token],
    today: Date,
    month_first: bool,
}

impl Reader<'_> {
    fn word(&self, i: usize) -> Option<&str> {
        self.tokens.get(i).map(|t| t.text.as_str())
    }

    /// A relative base day at `i`: "today", "now", "tomorrow", a weekday.
    fn base_day(&self, i: usize) -> Option<(Option<Date>, usize)> {
        let word = self.word(i)?;
        match word {
            "today" | "now" | "tonight" => Some((Some(self.today), 1)),
            "tomorrow" | "tmrw" | "tmr" | "tomorow" | "tommorow" | "tommorrow" | "2morrow" => {
                Some((self.today.checked_add(1.day()).ok(), 1))
            }
            _ => weekday_of(word).map(|w| (coming_weekday(self.today, w), 1)),
        }
    }

    /// Day and month (and year) at `i`: "14 March", "14th of March", "March 14th",
    /// "March 14 2027", "3/14", "2026-03-14". Returns the date and tokens used.
    fn calendar_date(&self, i: usize) -> Option<(Option<Date>, usize)> {
        let word = self.word(i)?;
        // ISO date.
        if let Ok(date) = word.parse::<Date>() {
            return Some((Some(date), 1));
        }
        // n/n or n/n/yy.
        if word.contains('/') {
            let parts: Vec<&str> = word.split('/').collect();
            if parts.len() == 2 || parts.len() == 3 {
                let a: i8 = parts[0].parse().ok()?;
                let b: i8 = parts[1].parse().ok()?;
                let (month, day) = if a > 12 {
                    (b, a)
                } else if b > 12 || self.month_first {
                    (a, b)
                } else {
                    (b, a)
                };
                let date = if parts.len() == 3 {
                    let year: i16 = parts[2].parse().ok()?;
                    let year = if year < 100 { 2000 + year } else { year };
                    Date::new(year, month, day).ok()
                } else {
                    next_month_day(self.today, month, day)
                };
                return Some((date, 1));
            }
            return None;
        }
        let with_year = |date: Option<Date>, month: i8, day: i8, used: usize| match self
            .word(i + used)
            .and_then(is_year)
        {
            Some(year) => (Date::new(year, month, day).ok(), used + 1),
            None => (date, used),
        };
        // "March 14th", "March 14".
        if let Some(month) = month_of(word) {
            let day = self.word(i + 1).and_then(|w| day_number(w, true))?;
            return Some(with_year(
                next_month_day(self.today, month, day),
                month,
                day,
                2,
            ));
        }
        // "14th of March", "14 March", "the 14th of March".
        let day = day_number(word, true)?;
        let (month_at, skip) = if self.word(i + 1) == Some("of") {
            (i + 2, 3)
        } else {
            (i + 1, 2)
        };
        let month = self.word(month_at).and_then(month_of)?;
        Some(with_year(
            next_month_day(self.today, month, day),
            month,
            day,
            skip,
        ))
    }

    /// "the 14th", "on the 14th", "14th" after on/for/by/or/and/to.
    fn day_of_month(&self, i: usize, after_context: bool) -> Option<(Option<Date>, usize)> {
        let (at, used) = if self.word(i) == Some("the") {
            (i + 1, 2)
        } else if after_context {
            (i, 1)
        } else {
            return None;
        };
        let word = self.word(at)?;
        // "the 14" is a day only with "the"; a bare "14" never is.
        let day = day_number(word, used == 2)?;
        Some((next_day_of_month(self.today, day), used))
    }

    /// The mention that starts at token `i`, if any, with the tokens it used.
    fn mention_at(&self, i: usize) -> Option<(Option<Date>, usize)> {
        let word = self.word(i)?;
        let previous = i.checked_sub(1).and_then(|p| self.word(p));
        // "the day after tomorrow"
        if word == "day"
            && self.word(i + 1) == Some("after")
            && self.word(i + 2) == Some("tomorrow")
        {
            return Some((self.today.checked_add(2.days()).ok(), 3));
        }
        // "in 2 weeks", "in two weeks' time", "in 10 days", "in a week"
        if word == "in" {
            if let Some((n, used)) = count_at(self.tokens, i + 1) {
                let unit = self.word(i + 1 + used)?;
                let days = match unit {
                    "day" | "days" => n,
                    "week" | "weeks" | "wks" | "wk" => n * 7,
                    _ => return None,
                };
                return Some((self.today.checked_add(days.days()).ok(), used + 2));
            }
            return None;
        }
        // "2 weeks from today", "a week from sunday", "5 days from now"
        if let Some((n, used)) = count_at(self.tokens, i) {
            if let Some(unit) = self.word(i + used) {
                let days = match unit {
                    "day" | "days" => Some(n),
                    "week" | "weeks" => Some(n * 7),
                    _ => None,
                };
                if let (Some(days), Some("from")) = (days, self.word(i + used + 1)) {
                    let at = i + used + 2;
                    let (base, base_used) = if self.word(at) == Some("next") {
                        let weekday = self.word(at + 1).and_then(weekday_of)?;
                        (next_week_weekday(self.today, weekday), 2)
                    } else {
                        self.base_day(at)?
                    };
                    let date = base.and_then(|b| b.checked_add(days.days()).ok());
                    return Some((date, used + 2 + base_used));
                }
            }
        }
        // "this Saturday", "this coming Sunday", "coming Friday", "next Friday",
        // then optionally a calendar date or "the 14th" to agree with.
        let (weekday_at, next) = match word {
            "this" | "coming" => {
                if self.word(i + 1) == Some("coming") {
                    (i + 2, false)
                } else {
                    (i + 1, false)
                }
            }
            "next" => (i + 1, true),
            _ => (i, false),
        };
        if let Some(weekday) = self.word(weekday_at).and_then(weekday_of) {
            if weekday_at != i || weekday_of(word).is_some() {
                let mut used = weekday_at - i + 1;
                let guess = if next {
                    next_week_weekday(self.today, weekday)
                } else {
                    coming_weekday(self.today, weekday)
                };
                // "Saturday the 14th", "Saturday 14 March", "Saturday, March 14".
                let after = i + used;
                let explicit = self
                    .calendar_date(after)
                    .or_else(|| self.day_of_month(after, true));
                if let Some((date, more)) = explicit {
                    used += more;
                    let agrees = date.filter(|d| d.weekday() == weekday);
                    return Some((agrees, used));
                }
                if self.word(i) == Some("this") && guess.is_none() {
                    // "this Tuesday" said on a Tuesday: today.
                    return Some((Some(self.today), used));
                }
                return Some((guess, used));
            }
            return None;
        }
        if let Some((date, used)) = self.calendar_date(i) {
            // "March 21 (saturday)": a weekday right after must agree.
            if let Some(weekday) = self.word(i + used).and_then(weekday_of) {
                return Some((date.filter(|d| d.weekday() == weekday), used + 1));
            }
            return Some((date, used));
        }
        if word == "tomorrow"
            || word == "today"
            || word == "tonight"
            || word.starts_with("tmr")
            || word == "2morrow"
            || word.starts_with("tomor")
            || word.starts_with("tommor")
        {
            return self.base_day(i);
        }
        let after_context = matches!(
            previous,
            Some("on" | "for" | "by" | "or" | "and" | "to" | "until" | "before")
        );
        self.day_of_month(i, after_context)
    }

    fn mentions(&self) -> Vec<Mention> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < self.tokens.len() {
            if let Some((date, used)) = self.mention_at(i) {
                let used = used.max(1);
                found.push(Mention {
                    date,
                    start: self.tokens[i].start,
                    end: self.tokens[(i + used - 1).min(self.tokens.len() - 1)].end,
                });
                i += used;
            } else {
                i += 1;
            }
        }
        found
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

/// Every count in the text (digits, words, dozens), with the byte span of each:
/// "20" → 20, "twenty" → 20, "a dozen" → 12, "two dozen" → 24, "half a dozen" → 6,
/// "20-25" → 25 (the upper end: a cake for up to 25 rather than too few).
pub fn counts(text: &str) -> Vec<(i64, usize, usize)> {
    let tokens = tokenize(text);
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let word = tokens[i].text.as_str();
        let next = tokens.get(i + 1).map(|t| t.text.as_str());
        if word == "half"
            && next == Some("a")
            && tokens.get(i + 2).map(|t| t.text.as_str()) == Some("dozen")
        {
            found.push((6, tokens[i].start, tokens[i + 2].end));
            i += 3;
            continue;
        }
        if (word == "a" || word == "one") && next == Some("dozen") {
            found.push((12, tokens[i].start, tokens[i + 1].end));
            i += 2;
            continue;
        }
        if word == "dozen" {
            found.push((12, tokens[i].start, tokens[i].end));
            i += 1;
            continue;
        }
        // "20-25": the tokenizer keeps it as one word.
        if let Some((low, high)) = word.split_once('-') {
            if let (Ok(low), Ok(high)) = (low.parse::<i64>(), high.parse::<i64>()) {
                if low < high {
                    found.push((high, tokens[i].start, tokens[i].end));
                    i += 1;
                    continue;
                }
            }
        }
        let parsed = if let Ok(n) = word.parse::<i64>() {
            Some((n, 1))
        } else if word == "a" || word == "an" || word == "one" {
            // "a hundred"; a lone "one" counts, a lone "a" does not.
            number_words(&tokens, i).or((word == "one").then_some((1, 1)))
        } else {
            number_words(&tokens, i)
        };
        if let Some((n, used)) = parsed {
            let end_token = i + used - 1;
            if tokens.get(i + used).map(|t| t.text.as_str()) == Some("dozen") {
                found.push((n * 12, tokens[i].start, tokens[i + used].end));
                i += used + 1;
                continue;
            }
            found.push((n, tokens[i].start, tokens[end_token].end));
            i += used;
            continue;
        }
        i += 1;
    }
    found
}

/// Counts directly followed by (or, for "serves N", preceded by) one of the
/// `units` words: "20 people", "twenty guests", "serves 20". A count on its own
/// is not taken unless the question asked for it (see the form engine).
pub fn counts_with_unit(text: &str, units: &[String]) -> Vec<i64> {
    let lower = text.to_lowercase();
    let mut values = Vec::new();
    for (value, start, end) in counts(text) {
        let after: Vec<String> = tokenize(&lower[end..])
            .into_iter()
            .take(2)
            .map(|t| t.text)
            .collect();
        let before: Vec<String> = tokenize(&lower[..start])
            .into_iter()
            .rev()
            .take(1)
            .map(|t| t.text)
            .collect();
        let unit_after = after
            .iter()
            .any(|w| units.iter().any(|u| unit_matches(w, u)));
        let unit_before = before
            .iter()
            .any(|w| units.iter().any(|u| unit_matches(w, u)));
        // "a cake for 40": a count after "for" that no other noun follows.
        let for_count = before.first().is_some_and(|w| w == "for")
            && after.first().is_none_or(|w| {
                !w.chars().all(char::is_alphabetic) || FOR_COUNT_FOLLOWERS.contains(&w.as_str())
            });
        if unit_after || unit_before || for_count {
            values.push(value);
        }
    }
    values
}

/// Words that may follow "for 40" and still leave 40 a head count.
const FOR_COUNT_FOLLOWERS: [&str; 14] = [
    "on", "next", "this", "please", "pls", "and", "at", "by", "in", "if", "or", "with", "the", "so",
];

fn unit_matches(word: &str, unit: &str) -> bool {
    word == unit || word.strip_suffix('s') == Some(unit) || unit.strip_suffix('s') == Some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    fn read(text: &str, today: &str) -> DateRead {
        read_date(text, date(today), true)
    }

    #[test]
    fn relative_days_and_weekdays() {
        let tuesday = "2026-03-10";
        assert_eq!(read("tomorrow", tuesday), DateRead::One(date("2026-03-11")));
        assert_eq!(
            read("this Saturday", tuesday),
            DateRead::One(date("2026-03-14"))
        );
        assert_eq!(
            read("next friday", tuesday),
            DateRead::One(date("2026-03-20"))
        );
        assert_eq!(
            read("a week from Sunday", tuesday),
            DateRead::One(date("2026-03-22"))
        );
        assert_eq!(
            read("in two weeks", tuesday),
            DateRead::One(date("2026-03-24"))
        );
        assert_eq!(
            read("the day after tomorrow", tuesday),
            DateRead::One(date("2026-03-12"))
        );
        // Said on a Tuesday, "Tuesday" could be today or next week.
        assert_eq!(read("tuesday", tuesday), DateRead::Unsure);
    }

    #[test]
    fn calendar_dates_and_agreement_with_the_weekday() {
        let tuesday = "2026-03-10";
        assert_eq!(
            read("Saturday the 14th", tuesday),
            DateRead::One(date("2026-03-14"))
        );
        assert_eq!(read("friday the 14th", tuesday), DateRead::Unsure);
        assert_eq!(read("March 14", tuesday), DateRead::One(date("2026-03-14")));
        assert_eq!(read("14/3", tuesday), DateRead::One(date("2026-03-14")));
        assert_eq!(read("3/14", tuesday), DateRead::One(date("2026-03-14")));
        assert_eq!(read("the 2nd", tuesday), DateRead::One(date("2026-04-02")));
        assert_eq!(
            read("jan 3", "2026-12-28"),
            DateRead::One(date("2027-01-03"))
        );
        assert_eq!(read("on the 20th or 21st", tuesday), DateRead::Unsure);
    }

    #[test]
    fn numbers_that_are_not_dates_stay_out() {
        let tuesday = "2026-03-10";
        assert_eq!(read("for 20 people", tuesday), DateRead::None);
        assert_eq!(read("my son's 7th birthday", tuesday), DateRead::None);
        assert_eq!(read("may I order a cake", tuesday), DateRead::None);
        assert_eq!(read("next week sometime", tuesday), DateRead::None);
        assert_eq!(read("at 3pm", tuesday), DateRead::None);
    }

    #[test]
    fn counts_in_words_and_dozens() {
        let values = |t: &str| counts(t).into_iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(values("twenty"), vec![20]);
        assert_eq!(values("twenty five people"), vec![25]);
        assert_eq!(values("a dozen"), vec![12]);
        assert_eq!(values("two dozen cupcakes"), vec![24]);
        assert_eq!(values("half a dozen"), vec![6]);
        assert_eq!(values("20-25 guests"), vec![25]);
        assert_eq!(values("one hundred and fifty"), vec![150]);
        let units = vec!["people".to_string(), "guests".into(), "serves".into()];
        assert_eq!(counts_with_unit("for 20 people", &units), vec![20]);
        assert_eq!(
            counts_with_unit("my daughter turns 6", &units),
            Vec::<i64>::new()
        );
        assert_eq!(counts_with_unit("it serves 30", &units), vec![30]);
        assert_eq!(
            counts_with_unit("a cake for 40 on saturday", &units),
            vec![40]
        );
        assert_eq!(counts_with_unit("for 2 tiers", &units), Vec::<i64>::new());
    }

    #[test]
    fn read_back_names_the_weekday() {
        assert_eq!(
            format_date(date("2026-03-14"), date("2026-03-10")),
            "Saturday 14 March"
        );
        assert_eq!(
            format_date(date("2027-01-02"), date("2026-12-28")),
            "Saturday 2 January 2027"
        );
    }

    /// eval/dates.jsonl: no wrong date at all, and most dates found.
    #[test]
    fn date_corpus_has_no_wrong_dates() {
        let text = include_str!("../../eval/dates.jsonl");
        let (mut right, mut wrong, mut missed, mut lines) = (0, 0, 0, 0);
        let mut failures = Vec::new();
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let now: jiff::civil::DateTime = value["now"].as_str().unwrap().parse().unwrap();
            let expected = value["date"].as_str().map(date);
            let got = match read_date(value["text"].as_str().unwrap(), now.date(), true) {
                DateRead::One(d) => Some(d),
                _ => None,
            };
            lines += 1;
            match (expected, got) {
                (Some(e), Some(g)) if e == g => right += 1,
                (None, None) => right += 1,
                (Some(_), None) => {
                    missed += 1;
                    failures.push(format!("missed {line}"));
                }
                _ => {
                    wrong += 1;
                    failures.push(format!("WRONG {got:?} {line}"));
                }
            }
        }
        eprintln!("dates: {lines} lines, {right} right, {wrong} wrong, {missed} missed");
        assert_eq!(wrong, 0, "{failures:#?}");
        assert!(right * 100 >= lines * 95, "{failures:#?}");
    }
}
