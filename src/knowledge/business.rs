//! `business.toml`: name, time zone, contact, weekly hours, closures and the
//! owner's escalation settings. Unknown keys are errors that name the key.

use super::{line_of, toml_error, Issue};
use serde::Deserialize;
use toml::Spanned;

/// The owner's escalation settings, with the defaults documented in
/// docs/knowledge-format.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationSettings {
    /// Below this confidence the bot hands over instead of answering.
    pub min_confidence: f32,
    /// An order of this many items or more is high-value and goes to a person.
    pub large_order_quantity: u32,
    pub handover_message: String,
    pub human_phrases: Vec<String>,
    pub complaint_phrases: Vec<String>,
    pub sensitive_phrases: Vec<String>,
    pub high_value_phrases: Vec<String>,
}

impl Default for EscalationSettings {
    fn default() -> Self {
        EscalationSettings {
            min_confidence: 0.55,
            large_order_quantity: 24,
            handover_message: "Thanks for your message! I've passed it to the team and a person will get back to you shortly.".into(),
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosedFile {
    date: Spanned<String>,
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
    closed: Vec<ClosedFile>,
    #[serde(default)]
    escalation: EscalationSettings,
}

/// Minutes since midnight for the open and close time of one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSpan {
    pub opens: u16,
    pub closes: u16,
}

pub const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A date the business is closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    pub date: jiff::civil::Date,
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
    pub closures: Vec<Closure>,
    pub escalation: EscalationSettings,
}

/// Parses "7:00-18:00" (or several spans joined by `,`) or "closed".
pub fn parse_hours(text: &str) -> Result<Vec<OpenSpan>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let mut spans = Vec::new();
    for part in text.split(',') {
        let (open, close) = part
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not `HH:MM-HH:MM` or `closed`"))?;
        let opens = parse_clock(open)
            .ok_or_else(|| format!("`{}` is not a time like 7:00", open.trim()))?;
        let closes = parse_clock(close)
            .ok_or_else(|| format!("`{}` is not a time like 18:00", close.trim()))?;
        if closes <= opens {
            return Err(format!("`{}` closes before it opens", part.trim()));
        }
        spans.push(OpenSpan { opens, closes });
    }
    Ok(spans)
}

fn parse_clock(text: &str) -> Option<u16> {
    let text = text.trim();
    let (hours, minutes) = text.split_once(':').unwrap_or((text, "0"));
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    (hours <= 24 && minutes < 60 && hours * 60 + minutes <= 24 * 60).then_some(hours * 60 + minutes)
}

/// "7am", "6:30pm", "noon", "midnight".
pub fn format_clock(minutes: u16) -> String {
    let (hours, mins) = (minutes / 60, minutes % 60);
    match (hours, mins) {
        (0, 0) | (24, 0) => "midnight".into(),
        (12, 0) => "noon".into(),
        _ => {
            let suffix = if (12..24).contains(&hours) {
                "pm"
            } else {
                "am"
            };
            let display = match hours % 12 {
                0 => 12,
                h => h,
            };
            if mins == 0 {
                format!("{display}{suffix}")
            } else {
                format!("{display}:{mins:02}{suffix}")
            }
        }
    }
}

pub fn format_spans(spans: &[OpenSpan]) -> String {
    if spans.is_empty() {
        return "closed".into();
    }
    spans
        .iter()
        .map(|s| format!("{} to {}", format_clock(s.opens), format_clock(s.closes)))
        .collect::<Vec<_>>()
        .join(" and ")
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
        days.map(|day| match day {
            None => Vec::new(),
            Some(value) => match parse_hours(value.get_ref()) {
                Ok(spans) => spans,
                Err(message) => {
                    issues.push(Issue::error(
                        path,
                        line_of(text, value.span().start),
                        message,
                    ));
                    ok = false;
                    Vec::new()
                }
            },
        })
    });
    let mut closures = Vec::new();
    for closed in file.closed {
        match closed.date.get_ref().parse::<jiff::civil::Date>() {
            Ok(date) => closures.push(Closure {
                date,
                reason: closed.reason,
            }),
            Err(_) => {
                issues.push(Issue::error(
                    path,
                    line_of(text, closed.date.span().start),
                    format!("`{}` is not a date like 2026-12-25", closed.date.get_ref()),
                ));
                ok = false;
            }
        }
    }
    let escalation = file.escalation;
    if !(0.0..=1.0).contains(&escalation.min_confidence) {
        issues.push(Issue::error(
            path,
            1,
            "escalation.min_confidence must be between 0 and 1",
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
        escalation,
    })
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
            "name = \"x\"\ntimezone = \"Mars/Olympus\"\n[hours]\nmonday = \"9-5pm\"\ntuesday = \"18:00-9:00\"\n",
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("business.toml:2:"));
        assert!(errors[1].starts_with("business.toml:4:"));
        assert!(errors[2].starts_with("business.toml:5:") && errors[2].contains("closes before"));
    }

    #[test]
    fn hours_parse_and_format() {
        let spans = parse_hours("7:00-12:30, 13:30-18:00").unwrap();
        assert_eq!(format_spans(&spans), "7am to 12:30pm and 1:30pm to 6pm");
        assert_eq!(parse_hours("closed").unwrap(), vec![]);
        assert_eq!(format_clock(12 * 60), "noon");
        assert!(parse_hours("9am-5pm").is_err());
    }
}
