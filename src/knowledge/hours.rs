//! The hours calculator: what business.toml's hours mean at a given instant,
//! in the business's own time zone. Is it open at T, when does it close, when
//! does it next open (as a local day and time)?
//!
//! Pure: the instant is always passed in, nothing reads the clock. Local times
//! become instants with jiff's "compatible" rule (RFC 5545): a time skipped by
//! a daylight-saving jump counts as the same time after the jump ("2:30" on the
//! spring-forward night is 3:30), a repeated time counts as its first
//! occurrence. Every search is bounded ([`SCAN_DAYS`]), so a week in which
//! every day is closed ends with "no opening", never a loop.

use super::business::{Business, Closure, OpenSpan, SpecialHours};
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// How far ahead a next opening is looked for: a year and a bit, so a long
/// closure (a season off) still finds the reopening.
pub const SCAN_DAYS: i32 = 400;

/// Contiguous periods joined into one at most this many times (a business open
/// around the clock has no closing time to find).
const MAX_JOINED: usize = 8;

/// What the owner's files say about one date.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DayHours<'a> {
    /// The weekly hours of that weekday (empty: closed that weekday).
    Weekly(&'a [OpenSpan]),
    /// `[[special_hours]]` for that date.
    Special(&'a SpecialHours),
    /// A `[[closed]]` entry covers the date.
    Closed(&'a Closure),
}

impl<'a> DayHours<'a> {
    pub fn spans(&self) -> &'a [OpenSpan] {
        match self {
            DayHours::Weekly(spans) => spans,
            DayHours::Special(special) => &special.spans,
            DayHours::Closed(_) => &[],
        }
    }
}

/// Monday is 0.
pub fn weekday_index(weekday: Weekday) -> usize {
    weekday.to_monday_zero_offset() as usize
}

/// The day's hours from the three tables: a closure wins, then special hours,
/// then the weekday's hours. (business.toml's check forbids a closure and
/// special hours on the same date.)
pub fn day_hours<'a>(
    weekly: &'a [Vec<OpenSpan>; 7],
    closures: &'a [Closure],
    special: &'a [SpecialHours],
    date: Date,
) -> DayHours<'a> {
    if let Some(closure) = closures.iter().find(|c| c.contains(date)) {
        return DayHours::Closed(closure);
    }
    if let Some(special) = special.iter().find(|s| s.date == date) {
        return DayHours::Special(special);
    }
    DayHours::Weekly(&weekly[weekday_index(date.weekday())])
}

/// The spans that open on `date`.
pub fn spans_on<'a>(
    weekly: &'a [Vec<OpenSpan>; 7],
    closures: &'a [Closure],
    special: &'a [SpecialHours],
    date: Date,
) -> &'a [OpenSpan] {
    day_hours(weekly, closures, special, date).spans()
}

/// One stretch of opening as real instants.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// The day it belongs to: the one it opens on.
    pub date: Date,
    pub opens: Timestamp,
    pub closes: Timestamp,
    /// The local clock at opening and closing.
    pub opens_local: DateTime,
    pub closes_local: DateTime,
}

/// Open or closed at one instant, and what comes next.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Open; the period ends at `closes` (contiguous periods joined).
    Open(Period),
    /// Closed; `next` is the next opening, `None` when there is none within
    /// [`SCAN_DAYS`] (every day closed).
    Closed { next: Option<Period> },
}

/// The business's hours in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    weekly: [Vec<OpenSpan>; 7],
    closures: Vec<Closure>,
    special: Vec<SpecialHours>,
    time_zone: TimeZone,
}

impl Schedule {
    pub fn new(
        weekly: [Vec<OpenSpan>; 7],
        closures: Vec<Closure>,
        special: Vec<SpecialHours>,
        time_zone: TimeZone,
    ) -> Self {
        Schedule {
            weekly,
            closures,
            special,
            time_zone,
        }
    }

    /// `None` when business.toml has no `[hours]` (nothing to compute from).
    pub fn for_business(business: &Business) -> Option<Schedule> {
        let weekly = business.hours.clone()?;
        let time_zone = TimeZone::get(&business.timezone).ok()?;
        Some(Schedule::new(
            weekly,
            business.closures.clone(),
            business.special_hours.clone(),
            time_zone,
        ))
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    pub fn closures(&self) -> &[Closure] {
        &self.closures
    }

    pub fn special_hours(&self) -> &[SpecialHours] {
        &self.special
    }

    /// The weekly hours of one weekday, whatever closures say.
    pub fn weekly(&self, weekday: Weekday) -> &[OpenSpan] {
        &self.weekly[weekday_index(weekday)]
    }

    pub fn day(&self, date: Date) -> DayHours<'_> {
        day_hours(&self.weekly, &self.closures, &self.special, date)
    }

    /// Local wall-clock time of an instant.
    pub fn local(&self, instant: Timestamp) -> DateTime {
        self.time_zone.to_datetime(instant)
    }

    /// The instant of a local wall-clock time (the compatible rule).
    pub fn instant(&self, local: DateTime) -> Option<Timestamp> {
        self.time_zone
            .to_ambiguous_timestamp(local)
            .compatible()
            .ok()
    }

    /// The date has no hours of its own, but a `[[closed]]` entry closes the
    /// same month and day in another year: the owner closes that day, and only
    /// has not said so for this year yet. Answers about it are not computed.
    pub fn closed_in_other_years(&self, date: Date) -> bool {
        !matches!(self.day(date), DayHours::Closed(_))
            && self.closures.iter().any(|closure| {
                closure.first == closure.last
                    && closure.first.month() == date.month()
                    && closure.first.day() == date.day()
            })
    }

    /// The periods that open on `date`, in order.
    pub fn periods_on(&self, date: Date) -> Vec<Period> {
        let mut periods = Vec::new();
        for span in self.day(date).spans() {
            let at = |minutes: u16| -> Option<DateTime> {
                let day = date
                    .checked_add(jiff::Span::new().days(i64::from(minutes / 1440)))
                    .ok()?;
                let minutes = minutes % 1440;
                Some(day.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0))
            };
            let (Some(opens_local), Some(closes_local)) = (at(span.opens), at(span.closes)) else {
                continue;
            };
            let (Some(opens), Some(closes)) =
                (self.instant(opens_local), self.instant(closes_local))
            else {
                continue;
            };
            // A span inside a skipped hour can shrink to nothing.
            if closes > opens {
                periods.push(Period {
                    date,
                    opens,
                    closes,
                    opens_local,
                    closes_local,
                });
            }
        }
        periods
    }

    /// Every period from the one that may still be running at `instant`
    /// (opened the day before, past midnight) onwards, for up to `days` days.
    fn periods_from(&self, instant: Timestamp, days: i32) -> impl Iterator<Item = Period> + '_ {
        let start = self.local(instant).date().yesterday().ok();
        start
            .into_iter()
            .flat_map(move |start| {
                (0..=days).filter_map(move |offset| {
                    start
                        .checked_add(jiff::Span::new().days(i64::from(offset)))
                        .ok()
                })
            })
            .flat_map(move |date| self.periods_on(date))
    }

    /// The period open at `instant` (opening minute included, closing minute
    /// excluded), joined with any that start the moment it ends.
    pub fn period_at(&self, instant: Timestamp) -> Option<Period> {
        let mut periods = self.periods_from(instant, SCAN_DAYS);
        let mut current = periods
            .by_ref()
            .take_while(|p| p.opens <= instant)
            .find(|p| p.opens <= instant && instant < p.closes)?;
        for _ in 0..MAX_JOINED {
            match self
                .periods_from(current.closes, 2)
                .find(|p| p.opens >= current.closes)
            {
                Some(next) if next.opens == current.closes => {
                    current.closes = next.closes;
                    current.closes_local = next.closes_local;
                }
                _ => break,
            }
        }
        Some(current)
    }

    /// The first period that opens after `instant` (strictly), within [`SCAN_DAYS`].
    pub fn next_opening(&self, instant: Timestamp) -> Option<Period> {
        self.periods_from(instant, SCAN_DAYS)
            .find(|p| p.opens > instant)
    }

    pub fn is_open(&self, instant: Timestamp) -> bool {
        self.period_at(instant).is_some()
    }

    pub fn status(&self, instant: Timestamp) -> Status {
        match self.period_at(instant) {
            Some(period) => Status::Open(period),
            None => Status::Closed {
                next: self.next_opening(instant),
            },
        }
    }
}

/// Parses a business-local `"YYYY-MM-DDTHH:MM:SS"` (FORMATS.md §7; seconds
/// optional) into the instant it names in `time_zone`.
pub fn parse_local_time(text: &str, time_zone: &TimeZone) -> Result<Timestamp, String> {
    let local: DateTime = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a local date and time like 2026-12-24T14:30:00"))?;
    time_zone
        .to_ambiguous_timestamp(local)
        .compatible()
        .map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::business::parse_hours;
    use jiff::civil::date;

    fn week(days: [&str; 7]) -> [Vec<OpenSpan>; 7] {
        days.map(|day| parse_hours(day).unwrap())
    }

    fn new_york(weekly: [Vec<OpenSpan>; 7]) -> Schedule {
        Schedule::new(
            weekly,
            Vec::new(),
            Vec::new(),
            TimeZone::get("America/New_York").unwrap(),
        )
    }

    /// The bakery's week: closed Monday, a lunch break on Wednesday, late Friday.
    fn bakery() -> Schedule {
        new_york(week([
            "closed",
            "7:00-18:00",
            "7:00-12:00, 13:00-18:00",
            "7:00-18:00",
            "17:00-2:00",
            "8:00-20:00",
            "8:00-14:00",
        ]))
    }

    fn at(schedule: &Schedule, local: DateTime) -> Timestamp {
        schedule.instant(local).unwrap()
    }

    #[test]
    fn exact_opening_and_closing_minutes() {
        let s = bakery();
        // Tuesday 2026-12-01
        assert!(!s.is_open(at(&s, date(2026, 12, 1).at(6, 59, 0, 0))));
        assert!(s.is_open(at(&s, date(2026, 12, 1).at(7, 0, 0, 0))));
        assert!(s.is_open(at(&s, date(2026, 12, 1).at(17, 59, 59, 0))));
        assert!(!s.is_open(at(&s, date(2026, 12, 1).at(18, 0, 0, 0))));
        let open = s
            .period_at(at(&s, date(2026, 12, 1).at(7, 0, 0, 0)))
            .unwrap();
        assert_eq!(open.closes_local, date(2026, 12, 1).at(18, 0, 0, 0));
    }

    #[test]
    fn a_lunch_break_closes_and_reopens_the_same_day() {
        let s = bakery();
        // Wednesday 2026-12-02
        let lunch = at(&s, date(2026, 12, 2).at(12, 30, 0, 0));
        let Status::Closed { next: Some(next) } = s.status(lunch) else {
            panic!("open during lunch")
        };
        assert_eq!(next.opens_local, date(2026, 12, 2).at(13, 0, 0, 0));
        let morning = s
            .period_at(at(&s, date(2026, 12, 2).at(11, 0, 0, 0)))
            .unwrap();
        assert_eq!(morning.closes_local, date(2026, 12, 2).at(12, 0, 0, 0));
    }

    #[test]
    fn a_range_past_midnight_is_open_on_both_sides_of_it() {
        let s = bakery();
        // Friday 2026-12-04 17:00 to Saturday 2:00
        let before_midnight = at(&s, date(2026, 12, 4).at(23, 59, 0, 0));
        let after_midnight = at(&s, date(2026, 12, 5).at(0, 30, 0, 0));
        assert!(s.is_open(before_midnight));
        assert!(s.is_open(after_midnight));
        let period = s.period_at(after_midnight).unwrap();
        assert_eq!(period.date, date(2026, 12, 4), "belongs to Friday");
        assert_eq!(period.closes_local, date(2026, 12, 5).at(2, 0, 0, 0));
        assert!(!s.is_open(at(&s, date(2026, 12, 5).at(2, 0, 0, 0))));
        let next = s
            .next_opening(at(&s, date(2026, 12, 5).at(2, 0, 0, 0)))
            .unwrap();
        assert_eq!(next.opens_local, date(2026, 12, 5).at(8, 0, 0, 0));
    }

    #[test]
    fn the_minute_before_midnight_and_a_day_ending_at_midnight() {
        let s = new_york(week([
            "9:00-24:00",
            "closed",
            "closed",
            "closed",
            "closed",
            "closed",
            "closed",
        ]));
        // Monday 2026-11-30
        let last_minute = at(&s, date(2026, 11, 30).at(23, 59, 0, 0));
        let period = s.period_at(last_minute).unwrap();
        assert_eq!(period.closes_local, date(2026, 12, 1).at(0, 0, 0, 0));
        assert!(!s.is_open(at(&s, date(2026, 12, 1).at(0, 0, 0, 0))));
        // Closed Tuesday to Sunday: the next opening is next Monday.
        let next = s.next_opening(last_minute).unwrap();
        assert_eq!(next.opens_local, date(2026, 12, 7).at(9, 0, 0, 0));
    }

    #[test]
    fn a_day_until_midnight_joins_a_next_day_from_midnight() {
        let s = new_york(week([
            "18:00-24:00",
            "0:00-3:00",
            "closed",
            "closed",
            "closed",
            "closed",
            "closed",
        ]));
        let period = s
            .period_at(at(&s, date(2026, 11, 30).at(23, 0, 0, 0)))
            .unwrap();
        assert_eq!(period.closes_local, date(2026, 12, 1).at(3, 0, 0, 0));
    }

    #[test]
    fn a_week_with_every_day_closed_has_no_next_opening() {
        let s = new_york(week(["closed"; 7]));
        let now = at(&s, date(2026, 12, 1).at(12, 0, 0, 0));
        assert_eq!(s.status(now), Status::Closed { next: None });
        assert_eq!(s.period_at(now), None);
    }

    #[test]
    fn a_holiday_on_a_normal_day_is_closed_and_the_next_day_opens() {
        let mut s = bakery();
        s.closures.push(Closure {
            first: date(2026, 12, 1),
            last: date(2026, 12, 1),
            reason: Some("Staff day".into()),
        });
        let noon = at(&s, date(2026, 12, 1).at(12, 0, 0, 0));
        let Status::Closed { next: Some(next) } = s.status(noon) else {
            panic!("open on a closed date")
        };
        assert_eq!(next.opens_local, date(2026, 12, 2).at(7, 0, 0, 0));
        assert!(matches!(s.day(date(2026, 12, 1)), DayHours::Closed(_)));
    }

    #[test]
    fn a_closed_range_and_special_hours_replace_the_week() {
        let mut s = bakery();
        s.closures.push(Closure {
            first: date(2026, 12, 7),
            last: date(2026, 12, 20),
            reason: None,
        });
        s.special.push(SpecialHours {
            date: date(2026, 12, 24),
            spans: parse_hours("7:00-15:00").unwrap(),
            reason: Some("Christmas Eve".into()),
        });
        let sunday_closing = at(&s, date(2026, 12, 6).at(14, 0, 0, 0));
        let next = s.next_opening(sunday_closing).unwrap();
        assert_eq!(next.opens_local, date(2026, 12, 22).at(7, 0, 0, 0));
        let eve = s
            .period_at(at(&s, date(2026, 12, 24).at(14, 59, 0, 0)))
            .unwrap();
        assert_eq!(eve.closes_local, date(2026, 12, 24).at(15, 0, 0, 0));
        assert!(!s.is_open(at(&s, date(2026, 12, 24).at(15, 0, 0, 0))));
    }

    #[test]
    fn spring_forward_night_keeps_local_opening_times() {
        // 2026-03-08 02:00 EST → 03:00 EDT. Saturday 22:00 to Sunday 4:00 is 5 real hours.
        let s = new_york(week([
            "closed",
            "closed",
            "closed",
            "closed",
            "closed",
            "22:00-4:00",
            "8:00-14:00",
        ]));
        let period = s
            .period_at(at(&s, date(2026, 3, 8).at(1, 30, 0, 0)))
            .unwrap();
        assert_eq!(period.closes.duration_since(period.opens).as_hours(), 5);
        assert!(s.is_open(at(&s, date(2026, 3, 8).at(3, 59, 0, 0))));
        assert!(!s.is_open(at(&s, date(2026, 3, 8).at(4, 0, 0, 0))));
        let next = s.next_opening(period.closes).unwrap();
        assert_eq!(next.opens_local, date(2026, 3, 8).at(8, 0, 0, 0));
        // 8am EDT is 12:00 UTC (it was 13:00 UTC the week before).
        assert_eq!(next.opens.to_string(), "2026-03-08T12:00:00Z");
        let week_before = s
            .next_opening(at(&s, date(2026, 3, 1).at(5, 0, 0, 0)))
            .unwrap();
        assert_eq!(week_before.opens.to_string(), "2026-03-01T13:00:00Z");
    }

    #[test]
    fn fall_back_night_keeps_local_closing_times() {
        // 2026-11-01 02:00 EDT → 01:00 EST. Saturday 22:00 to Sunday 4:00 is 7 real hours.
        let s = new_york(week([
            "closed",
            "closed",
            "closed",
            "closed",
            "closed",
            "22:00-4:00",
            "8:00-14:00",
        ]));
        let saturday_night = at(&s, date(2026, 10, 31).at(23, 0, 0, 0));
        let period = s.period_at(saturday_night).unwrap();
        assert_eq!(period.closes.duration_since(period.opens).as_hours(), 7);
        assert_eq!(period.closes.to_string(), "2026-11-01T09:00:00Z");
        // The second 1:30 (standard time) is still inside the period.
        let second_one_thirty: Timestamp = "2026-11-01T06:30:00Z".parse().unwrap();
        assert_eq!(
            s.local(second_one_thirty),
            date(2026, 11, 1).at(1, 30, 0, 0)
        );
        assert!(s.is_open(second_one_thirty));
        let next = s.next_opening(period.closes).unwrap();
        assert_eq!(next.opens_local, date(2026, 11, 1).at(8, 0, 0, 0));
        assert_eq!(next.opens.to_string(), "2026-11-01T13:00:00Z");
    }

    #[test]
    fn daylight_saving_days_open_and_close_at_the_written_times() {
        let s = new_york(week(["7:00-18:00"; 7]));
        for day in [date(2026, 3, 8), date(2026, 11, 1)] {
            assert!(!s.is_open(at(&s, day.at(6, 59, 0, 0))), "{day}");
            assert!(s.is_open(at(&s, day.at(7, 0, 0, 0))), "{day}");
            assert!(s.is_open(at(&s, day.at(17, 59, 0, 0))), "{day}");
            assert!(!s.is_open(at(&s, day.at(18, 0, 0, 0))), "{day}");
        }
    }

    #[test]
    fn local_times_parse_in_the_business_zone() {
        let zone = TimeZone::get("America/New_York").unwrap();
        let instant = parse_local_time("2026-07-01T09:30:00", &zone).unwrap();
        assert_eq!(instant.to_string(), "2026-07-01T13:30:00Z");
        assert!(parse_local_time("2026-07-01T09:30", &zone).is_ok());
        assert!(parse_local_time("tomorrow", &zone).is_err());
    }
}
