//! Finding the date mentions in a message and resolving each against the
//! business-local `today`: "tomorrow", weekdays, "next <weekday>", calendar
//! dates ("March 14", "14/3"), "the 14th", "a week from Sunday", "in two weeks".
//!
//! A mention that could be more than one day resolves to no date, never to a
//! guess; turning the mentions into one answer is left to the parent module.

use super::counts::count_at;
use super::words::{day_number, is_year, month_of, weekday_of, Token};
use jiff::civil::{Date, Weekday};
use jiff::ToSpan;

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

/// `date` plus `days` that a customer wrote; `None` when the count is beyond
/// any calendar ("in 9223372036854775807 weeks") rather than a panic.
fn add_days(date: Date, days: i64) -> Option<Date> {
    let span = jiff::Span::new().try_days(days).ok()?;
    date.checked_add(span).ok()
}

/// "next <weekday>": that day in the Monday-to-Sunday week after this one.
fn next_week_weekday(today: Date, weekday: Weekday) -> Option<Date> {
    let to_monday = 7 - today.weekday().to_monday_zero_offset() as i64;
    today
        .checked_add((to_monday + weekday.to_monday_zero_offset() as i64).days())
        .ok()
}

/// One date mention found in the text, or one that could mean several days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Mention {
    pub(super) date: Option<Date>,
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) struct Reader<'a> {
    pub(super) tokens: &'a [Token],
    pub(super) today: Date,
    pub(super) month_first: bool,
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
                    "week" | "weeks" | "wks" | "wk" => n.saturating_mul(7),
                    _ => return None,
                };
                return Some((add_days(self.today, days), used + 2));
            }
            return None;
        }
        // "2 weeks from today", "a week from sunday", "5 days from now"
        if let Some((n, used)) = count_at(self.tokens, i) {
            if let Some(unit) = self.word(i + used) {
                let days = match unit {
                    "day" | "days" => Some(n),
                    "week" | "weeks" => Some(n.saturating_mul(7)),
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
                    let date = base.and_then(|b| add_days(b, days));
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

    pub(super) fn mentions(&self) -> Vec<Mention> {
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
