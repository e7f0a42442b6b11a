//! `business.toml`: name, time zone, contact, weekly hours (several ranges a
//! day, ranges past midnight), closed dates and date ranges, special hours for
//! single days, and the owner's escalation settings. Unknown keys, bad times and
//! overlapping hours are errors that name their line. What the hours mean at a
//! given instant is [`super::hours`]' job.

use super::spans::DAY_MINUTES;
use super::{line_of, toml_error, Issue};
use serde::Deserialize;
use toml::Spanned;

pub use super::spans::{format_clock, format_spans, parse_hours, OpenSpan, WEEKDAYS};

/// The owner's escalation settings, with the defaults documented in
/// docs/knowledge-format.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationSettings {
    /// Below this confidence the bot hands over instead of answering. When
    /// absent the thresholds are calibrated on the knowledge itself to hold
    /// `target_false_escalation` (assistant::calibration).
    pub min_confidence: Option<f32>,
    /// The share of answerable questions the calibration may hand over.
    pub target_false_escalation: f32,
    /// An order of this many items or more is high-value and goes to a person.
    pub large_order_quantity: u32,
    pub handover_message: String,
    /// While the business is open a person usually replies within this many
    /// minutes; every hand-over says so (outside hours it names the next opening).
    pub reply_within_minutes: u32,
    /// Who replies to hand-overs, named in that sentence ("Jasmine will reply…").
    pub person_name: Option<String>,
    pub human_phrases: Vec<String>,
    pub complaint_phrases: Vec<String>,
    pub sensitive_phrases: Vec<String>,
    pub high_value_phrases: Vec<String>,
}

impl Default for EscalationSettings {
    fn default() -> Self {
        EscalationSettings {
            min_confidence: None,
            target_false_escalation: 0.05,
            large_order_quantity: 24,
            handover_message: "Thanks for your message! I've passed it to the team.".into(),
            reply_within_minutes: 30,
            person_name: None,
            human_phrases: Vec::new(),
            complaint_phrases: Vec::new(),
            sensitive_phrases: Vec::new(),
            high_value_phrases: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursFile {
    monday: Option<Spanned<String>>,
    tuesday: Option<Spanned<String>>,
    wednesday: Option<Spanned<String>>,
    thursday: Option<Spanned<String>>,
    friday: Option<Spanned<String>>,
    saturday: Option<Spanned<String>>,
    sunday: Option<Spanned<String>>,
}

/// One `[[closed]]` table: a `date`, or a `from`..`to` range (both included).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosedFile {
    date: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    reason: Option<String>,
}

/// One `[[special_hours]]` table: different hours on one date.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialFile {
    date: Spanned<String>,
    hours: Spanned<String>,
    reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BusinessFile {
    name: String,
    timezone: Spanned<String>,
    phone: Option<String>,
    email: Option<String>,
    website: Option<String>,
    address: Option<String>,
    currency: Option<String>,
    hours: Option<HoursFile>,
    #[serde(default)]
    closed: Vec<Spanned<ClosedFile>>,
    #[serde(default)]
    special_hours: Vec<Spanned<SpecialFile>>,
    #[serde(default)]
    escalation: EscalationSettings,
}

/// Dates the business is closed: one day (`first == last`) or a range, both included.
#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    pub first: jiff::civil::Date,
    pub last: jiff::civil::Date,
    pub reason: Option<String>,
}

impl Closure {
    pub fn contains(&self, date: jiff::civil::Date) -> bool {
        self.first <= date && date <= self.last
    }
}

/// Hours that replace the weekly hours on one date (Christmas Eve closes early).
#[derive(Debug, Clone, PartialEq)]
pub struct SpecialHours {
    pub date: jiff::civil::Date,
    pub spans: Vec<OpenSpan>,
    pub reason: Option<String>,
}

/// Everything business.toml says, validated.
#[derive(Debug, Clone)]
pub struct Business {
    pub name: String,
    pub timezone: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
    pub address: Option<String>,
    pub currency: String,
    /// Monday first; an empty list means closed that day. `None` when no `[hours]`.
    pub hours: Option<[Vec<OpenSpan>; 7]>,
    /// Sorted by first date; never overlapping.
    pub closures: Vec<Closure>,
    /// Sorted by date; at most one per date, never on a closed date.
    pub special_hours: Vec<SpecialHours>,
    pub escalation: EscalationSettings,
}

pub fn parse(path: &str, text: &str, issues: &mut Vec<Issue>) -> Option<Business> {
    let file: BusinessFile = match toml::from_str(text) {
        Ok(file) => file,
        Err(error) => {
            issues.push(toml_error(path, text, &error));
            return None;
        }
    };
    let mut ok = true;
    let timezone = file.timezone.get_ref().clone();
    if jiff::tz::TimeZone::get(&timezone).is_err() {
        issues.push(Issue::error(
            path,
            line_of(text, file.timezone.span().start),
            format!("unknown time zone `{timezone}` (use an IANA name like America/New_York)"),
        ));
        ok = false;
    }
    let mut day_lines = [None; 7];
    let hours = file.hours.map(|hours| {
        let days = [
            hours.monday,
            hours.tuesday,
            hours.wednesday,
            hours.thursday,
            hours.friday,
            hours.saturday,
            hours.sunday,
        ];
        let mut weekly: [Vec<OpenSpan>; 7] = Default::default();
        for (index, day) in days.into_iter().enumerate() {
            let Some(value) = day else { continue };
            let line = line_of(text, value.span().start);
            day_lines[index] = Some(line);
            match parse_hours(value.get_ref()) {
                Ok(spans) => {
                    warn_long_overnight(path, line, value.get_ref(), &spans, issues);
                    weekly[index] = spans;
                }
                Err(message) => {
                    issues.push(Issue::error(path, line, message));
                    ok = false;
                }
            }
        }
        // A range past midnight must end before the next day's first range opens.
        for (index, spans) in weekly.iter().enumerate() {
            let next = (index + 1) % 7;
            if let (Some(last), Some(first)) = (spans.last(), weekly[next].first()) {
                if last.past_midnight() && last.closes - DAY_MINUTES > first.opens {
                    issues.push(Issue::error(
                        path,
                        day_lines[index].unwrap_or(1),
                        format!(
                            "{} runs past midnight to {}, after {} opens at {}",
                            WEEKDAYS[index],
                            format_clock(last.closes),
                            WEEKDAYS[next],
                            format_clock(first.opens)
                        ),
                    ));
                    ok = false;
                }
            }
        }
        weekly
    });

    let parse_date = |value: &Spanned<String>, issues: &mut Vec<Issue>| {
        let parsed = value.get_ref().trim().parse::<jiff::civil::Date>().ok();
        if parsed.is_none() {
            issues.push(Issue::error(
                path,
                line_of(text, value.span().start),
                format!("`{}` is not a date like 2026-12-25", value.get_ref()),
            ));
        }
        parsed
    };
    let mut closures: Vec<(Closure, usize)> = Vec::new();
    for closed in file.closed {
        let line = line_of(text, closed.span().start);
        let closed = closed.into_inner();
        let (first, last) = match (&closed.date, &closed.from, &closed.to) {
            (Some(date), None, None) => {
                let date = parse_date(date, issues);
                (date, date)
            }
            (None, Some(from), Some(to)) => (parse_date(from, issues), parse_date(to, issues)),
            (Some(_), _, _) => {
                issues.push(Issue::error(
                    path,
                    line,
                    "a [[closed]] entry has either `date` (one day) or `from` and `to` (a range), not both",
                ));
                (None, None)
            }
            (None, _, _) => {
                issues.push(Issue::error(
                    path,
                    line,
                    "a [[closed]] entry needs `date` (one day) or both `from` and `to` (a range of days)",
                ));
                (None, None)
            }
        };
        let (Some(first), Some(last)) = (first, last) else {
            ok = false;
            continue;
        };
        if last < first {
            issues.push(Issue::error(
                path,
                line,
                format!("`to` ({last}) is before `from` ({first})"),
            ));
            ok = false;
            continue;
        }
        closures.push((
            Closure {
                first,
                last,
                reason: closed.reason,
            },
            line,
        ));
    }
    closures.sort_by_key(|(closure, line)| (closure.first, *line));
    for pair in closures.windows(2) {
        let ((earlier, earlier_line), (later, later_line)) = (&pair[0], &pair[1]);
        if later.first <= earlier.last {
            issues.push(Issue::error(
                path,
                *later_line,
                format!(
                    "closed dates overlap: {} is already closed by the entry on line {earlier_line}",
                    later.first
                ),
            ));
            ok = false;
        }
    }

    let mut special_hours: Vec<(SpecialHours, usize)> = Vec::new();
    for special in file.special_hours {
        let line = line_of(text, special.span().start);
        let special = special.into_inner();
        let date = parse_date(&special.date, issues);
        let hours_line = line_of(text, special.hours.span().start);
        let spans = match parse_hours(special.hours.get_ref()) {
            Ok(spans) if spans.is_empty() => {
                issues.push(Issue::error(
                    path,
                    hours_line,
                    "for a day you are closed, use a [[closed]] entry",
                ));
                None
            }
            Ok(spans) => {
                warn_long_overnight(path, hours_line, special.hours.get_ref(), &spans, issues);
                Some(spans)
            }
            Err(message) => {
                issues.push(Issue::error(path, hours_line, message));
                None
            }
        };
        let (Some(date), Some(spans)) = (date, spans) else {
            ok = false;
            continue;
        };
        if let Some((_, closed_line)) = closures.iter().find(|(c, _)| c.contains(date)) {
            issues.push(Issue::error(
                path,
                line,
                format!(
                    "{date} has special hours but is closed by the entry on line {closed_line}"
                ),
            ));
            ok = false;
            continue;
        }
        if let Some((_, other_line)) = special_hours.iter().find(|(s, _)| s.date == date) {
            issues.push(Issue::error(
                path,
                line,
                format!("{date} already has special hours on line {other_line}"),
            ));
            ok = false;
            continue;
        }
        special_hours.push((
            SpecialHours {
                date,
                spans,
                reason: special.reason,
            },
            line,
        ));
    }
    special_hours.sort_by_key(|(special, _)| special.date);
    let closures: Vec<Closure> = closures.into_iter().map(|(c, _)| c).collect();
    // Special hours against the days around them: a range past midnight on the
    // day before must end before they open, and theirs before the next day opens.
    if let Some(weekly) = &hours {
        let specials: Vec<SpecialHours> = special_hours.iter().map(|(s, _)| s.clone()).collect();
        for (special, line) in &special_hours {
            let day = |date: jiff::civil::Date| {
                super::hours::spans_on(weekly, &closures, &specials, date).to_vec()
            };
            let (Ok(before), Ok(after)) = (special.date.yesterday(), special.date.tomorrow())
            else {
                continue;
            };
            let overlap = |earlier: &[OpenSpan], later: &[OpenSpan]| {
                earlier
                    .last()
                    .copied()
                    .zip(later.first().copied())
                    .filter(|(last, first)| {
                        last.past_midnight() && last.closes - DAY_MINUTES > first.opens
                    })
            };
            let spans = &special.spans;
            let clash = overlap(&day(before), spans)
                .map(|(last, _)| {
                    format!(
                        "the hours of {before} run past midnight to {}, after these open",
                        format_clock(last.closes)
                    )
                })
                .or_else(|| {
                    overlap(spans, &day(after)).map(|(last, first)| {
                        format!(
                            "these hours run past midnight to {}, after {after} opens at {}",
                            format_clock(last.closes),
                            format_clock(first.opens)
                        )
                    })
                });
            if let Some(message) = clash {
                issues.push(Issue::error(
                    path,
                    *line,
                    format!("{}: {message}", special.date),
                ));
                ok = false;
            }
        }
    } else if let Some((_, line)) = special_hours.first() {
        issues.push(Issue::error(
            path,
            *line,
            "[[special_hours]] needs the weekly [hours] table too",
        ));
        ok = false;
    }

    let escalation = file.escalation;
    if escalation
        .min_confidence
        .is_some_and(|m| !(0.0..=1.0).contains(&m))
    {
        issues.push(Issue::error(
            path,
            line_of_key(text, "min_confidence"),
            "escalation.min_confidence must be between 0 and 1",
        ));
        ok = false;
    }
    if !(0.005..=0.5).contains(&escalation.target_false_escalation) {
        issues.push(Issue::error(
            path,
            line_of_key(text, "target_false_escalation"),
            "escalation.target_false_escalation must be between 0.005 and 0.5",
        ));
        ok = false;
    }
    if escalation.reply_within_minutes == 0 {
        issues.push(Issue::error(
            path,
            line_of_key(text, "reply_within_minutes"),
            "escalation.reply_within_minutes must be at least 1",
        ));
        ok = false;
    }
    ok.then(|| Business {
        name: file.name,
        timezone,
        phone: file.phone,
        email: file.email,
        website: file.website,
        address: file.address,
        currency: file.currency.unwrap_or_else(|| "$".into()),
        hours,
        closures,
        special_hours: special_hours.into_iter().map(|(s, _)| s).collect(),
        escalation,
    })
}

/// Line of the first `key =` in the file (1 when absent), for settings that
/// are read without spans.
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(1, |index| index + 1)
}

/// A range past midnight that lasts more than 16 hours ("9:00-5:00") is more
/// likely a 12-hour clock slip than a night shift: say so, but accept it.
fn warn_long_overnight(
    path: &str,
    line: usize,
    written: &str,
    spans: &[OpenSpan],
    issues: &mut Vec<Issue>,
) {
    if let Some(span) = spans
        .iter()
        .find(|s| s.past_midnight() && s.closes - s.opens > 16 * 60)
    {
        issues.push(Issue::warning(
            path,
            line,
            format!(
                "`{}` runs past midnight to {} the next day; if you meant the afternoon, write it as {}:00",
                written.trim(),
                format_clock(span.closes),
                (span.closes - DAY_MINUTES) / 60 + 12
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        let mut issues = Vec::new();
        parse("business.toml", text, &mut issues);
        issues.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn minimum_file_parses_with_defaults() {
        let mut issues = Vec::new();
        let business = parse(
            "business.toml",
            "name = \"Jasmine's Bakery\"\ntimezone = \"America/New_York\"\n",
            &mut issues,
        )
        .unwrap();
        assert!(issues.is_empty());
        assert_eq!(business.currency, "$");
        assert_eq!(business.escalation.large_order_quantity, 24);
        assert!(business.hours.is_none());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let errors = errors_of("name = \"x\"\ntimezone = \"UTC\"\nopening = \"9-5\"\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("business.toml:3:"), "{}", errors[0]);
        assert!(errors[0].contains("opening"), "{}", errors[0]);
    }

    #[test]
    fn bad_hours_and_time_zone_point_at_their_lines() {
        let errors = errors_of(
            "name = \"x\"\ntimezone = \"Mars/Olympus\"\n[hours]\nmonday = \"9-25:00\"\ntuesday = \"9:00-9:00\"\n",
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("business.toml:2:"));
        assert!(errors[1].starts_with("business.toml:4:") && errors[1].contains("25:00"));
        assert!(errors[2].starts_with("business.toml:5:") && errors[2].contains("same time"));
    }

    #[test]
    fn a_night_range_running_into_the_next_days_hours_is_an_error() {
        let errors = errors_of(
            "name = \"x\"\ntimezone = \"UTC\"\n[hours]\nfriday = \"20:00-3:00\"\nsaturday = \"2:00-12:00\"\nsunday = \"22:00-8:00\"\nmonday = \"9:00-17:00\"\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("business.toml:4: error: Friday runs past midnight to 3am, after Saturday opens at 2am"), "{}", errors[0]);
    }

    #[test]
    fn a_long_night_range_is_accepted_with_a_warning() {
        let mut issues = Vec::new();
        let business = parse(
            "business.toml",
            "name = \"x\"\ntimezone = \"UTC\"\n[hours]\ntuesday = \"9:00-5:00\"\n",
            &mut issues,
        );
        assert!(business.is_some());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].severity, super::super::Severity::Warning);
        assert!(issues[0].message.contains("17:00"), "{}", issues[0]);
    }

    const CLOSURES: &str =
        "name = \"x\"\ntimezone = \"America/New_York\"\n[hours]\nthursday = \"7:00-18:00\"\n";

    #[test]
    fn closed_dates_ranges_and_special_hours_parse() {
        let mut issues = Vec::new();
        let text = format!(
            "{CLOSURES}[[closed]]\ndate = \"2026-12-25\"\nreason = \"Christmas Day\"\n[[closed]]\nfrom = \"2027-08-09\"\nto = \"2027-08-15\"\n[[special_hours]]\ndate = \"2026-12-24\"\nhours = \"7:00-15:00\"\nreason = \"Christmas Eve\"\n[escalation]\nreply_within_minutes = 45\nperson_name = \"Jasmine\"\n"
        );
        let business = parse("business.toml", &text, &mut issues).unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(business.closures.len(), 2);
        assert!(business.closures[1].contains(jiff::civil::date(2027, 8, 12)));
        assert_eq!(business.special_hours[0].spans[0].closes, 15 * 60);
        assert_eq!(business.escalation.reply_within_minutes, 45);
        assert_eq!(business.escalation.person_name.as_deref(), Some("Jasmine"));
    }

    #[test]
    fn overlapping_closures_and_contradicting_special_hours_are_errors() {
        let text = format!(
            "{CLOSURES}[[closed]]\nfrom = \"2026-12-24\"\nto = \"2026-12-27\"\n[[closed]]\ndate = \"2026-12-26\"\n[[closed]]\nfrom = \"2027-01-05\"\nto = \"2027-01-02\"\n[[special_hours]]\ndate = \"2026-12-25\"\nhours = \"9:00-12:00\"\n[[special_hours]]\ndate = \"2026-12-31\"\nhours = \"9:00-12:00, 11:00-13:00\"\n[[closed]]\nreason = \"no date\"\n"
        );
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 5, "{errors:?}");
        let joined = errors.join("\n");
        assert!(joined.contains("business.toml:8: error: closed dates overlap: 2026-12-26 is already closed by the entry on line 5"), "{joined}");
        assert!(
            joined.contains(
                "business.toml:10: error: `to` (2027-01-02) is before `from` (2027-01-05)"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("business.toml:13: error: 2026-12-25 has special hours but is closed"),
            "{joined}"
        );
        assert!(
            joined.contains("business.toml:18: error: `11:00-13:00` overlaps `9:00-12:00`"),
            "{joined}"
        );
        assert!(
            joined.contains("business.toml:19: error: a [[closed]] entry needs `date`"),
            "{joined}"
        );
    }

    #[test]
    fn special_hours_past_midnight_must_end_before_the_next_day_opens() {
        let text =
            format!("{CLOSURES}[[special_hours]]\ndate = \"2026-12-23\"\nhours = \"18:00-8:00\"\n");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("business.toml:5: error: 2026-12-23: these hours run past midnight to 8am, after 2026-12-24 opens at 7am"), "{}", errors[0]);
    }

    #[test]
    fn a_zero_reply_time_is_an_error_on_its_line() {
        let errors =
            errors_of("name = \"x\"\ntimezone = \"UTC\"\n[escalation]\nreply_within_minutes = 0\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("business.toml:4:"), "{}", errors[0]);
    }
}
