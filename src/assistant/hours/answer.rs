//! Writing the computed answer to an [`HoursQuestion`] from the hours
//! calculator at the message's instant, one sentence at a time, and telling
//! when the owner's files do not settle a date ([`unsettled`]).
//!
//! Pure: the instant is passed in; never reads the clock or the message.

use super::phrases::{
    capitalized, closing_phrase, closure_phrase, closures_source, hours_source, minutes_of, on_day,
    opening_phrase, weekday_title,
};
use super::{Asks, Clock, ComputedAnswer, DayPart, HoursQuestion, When};
use crate::knowledge::business::{format_clock, format_spans, OpenSpan};
use crate::knowledge::hours::{DayHours, Schedule, Status};
use jiff::civil::Date;
use jiff::Timestamp;

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
