//! One day's opening hours as an owner writes them in business.toml:
//! [`OpenSpan`], parsing "7:00-12:00, 13:00-18:00", "6pm-2am" or "closed"
//! ([`parse_hours`]) and writing spans back as words ([`format_clock`],
//! [`format_spans`]).
//!
//! Pure text in, spans or a message out: no file, line numbers or dates here;
//! [`super::business`] places the messages on their lines and checks days
//! against each other, [`super::hours`] says what the spans mean at an instant.

/// Minutes since the day's midnight for the open and close time of one span.
/// `closes` is after `opens`; above 1440 the span runs past midnight into the
/// next day ("18:00-2:00" is 1080..1560). A span belongs to the day it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSpan {
    pub opens: u16,
    pub closes: u16,
}

pub(super) const DAY_MINUTES: u16 = 24 * 60;

impl OpenSpan {
    /// Runs past midnight into the next day.
    pub fn past_midnight(&self) -> bool {
        self.closes > DAY_MINUTES
    }
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

/// Parses one day's hours as an owner writes them: "7:00-18:00", "7am-6pm",
/// several ranges ("7:00-12:00, 13:00-18:00" for a lunch break; `,`, `;` or
/// `and` between them), a range past midnight ("18:00-2:00" closes at 2am the
/// next day), or "closed". Ranges come back sorted; ranges that touch are
/// joined; ranges that overlap are an error.
pub fn parse_hours(text: &str) -> Result<Vec<OpenSpan>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let lowered = text.to_lowercase();
    let mut spans: Vec<(OpenSpan, String)> = Vec::new();
    for part in lowered
        .split([',', ';'])
        .flat_map(|p| p.split(" and "))
        .map(str::trim)
    {
        if part.is_empty() {
            continue;
        }
        let (open, close) = split_range(part).ok_or_else(|| {
            format!("`{text}` is not hours like `7:00-18:00`, `7am-6pm` or `closed`")
        })?;
        let opens = parse_clock(open)
            .filter(|&m| m < DAY_MINUTES)
            .ok_or_else(|| format!("`{}` is not an opening time like 7:00 or 7am", open.trim()))?;
        let mut closes = parse_clock(close)
            .ok_or_else(|| format!("`{}` is not a closing time like 18:00 or 6pm", close.trim()))?;
        if closes == 0 {
            closes = DAY_MINUTES; // "-0:00", "-midnight", "-12am": the end of the day
        }
        if closes == opens {
            return Err(format!("`{part}` opens and closes at the same time"));
        }
        if closes < opens {
            closes += DAY_MINUTES; // past midnight: closes the next day
        }
        spans.push((OpenSpan { opens, closes }, part.to_string()));
    }
    if spans.is_empty() {
        return Err(format!(
            "`{text}` is not hours like `7:00-18:00`, `7am-6pm` or `closed`"
        ));
    }
    spans.sort_by_key(|(span, _)| span.opens);
    let mut joined: Vec<(OpenSpan, String)> = Vec::new();
    for (span, written) in spans {
        match joined.last_mut() {
            Some((last, last_written)) if span.opens < last.closes => {
                return Err(format!("`{written}` overlaps `{last_written}`"));
            }
            Some((last, _)) if span.opens == last.closes => last.closes = span.closes,
            _ => joined.push((span, written)),
        }
    }
    Ok(joined.into_iter().map(|(span, _)| span).collect())
}

/// "7:00-18:00", "7am - 6pm", "7am to 6pm", "7–18" → the two sides.
fn split_range(part: &str) -> Option<(&str, &str)> {
    if let Some(sides) = part.split_once(" to ") {
        return Some(sides);
    }
    part.split_once(['-', '–', '—'])
}

/// Minutes since midnight of "7", "7:00", "07:30", "19:00", "24:00", "7am",
/// "6:30 pm", "12am" (0), "noon", "midnight" (0).
fn parse_clock(text: &str) -> Option<u16> {
    let text = text.trim().to_lowercase();
    match text.as_str() {
        "noon" | "midday" => return Some(12 * 60),
        "midnight" => return Some(0),
        _ => {}
    }
    let (number, meridiem) = if let Some(rest) = text
        .strip_suffix("am")
        .or_else(|| text.strip_suffix("a.m."))
    {
        (rest.trim(), Some(false))
    } else if let Some(rest) = text
        .strip_suffix("pm")
        .or_else(|| text.strip_suffix("p.m."))
    {
        (rest.trim(), Some(true))
    } else {
        (text.as_str(), None)
    };
    let (hours, minutes) = match number.split_once([':', '.']) {
        Some((hours, minutes)) if minutes.len() == 2 => (hours, minutes),
        Some(_) => return None,
        None => (number, "0"),
    };
    if hours.is_empty() || hours.len() > 2 || !hours.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    if minutes >= 60 {
        return None;
    }
    let hours = match meridiem {
        Some(_) if !(1..=12).contains(&hours) => return None,
        Some(pm) => hours % 12 + if pm { 12 } else { 0 },
        None if hours > 24 || (hours == 24 && minutes > 0) => return None,
        None => hours,
    };
    Some(hours * 60 + minutes)
}

/// "7am", "6:30pm", "noon", "midnight".
/// Minutes past a day (a span closing after midnight) wrap to the next day's clock.
pub fn format_clock(minutes: u16) -> String {
    let minutes = if minutes > DAY_MINUTES {
        minutes - DAY_MINUTES
    } else {
        minutes
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_parse_and_format() {
        let spans = parse_hours("7:00-12:30, 13:30-18:00").unwrap();
        assert_eq!(format_spans(&spans), "7am to 12:30pm and 1:30pm to 6pm");
        assert_eq!(parse_hours("closed").unwrap(), vec![]);
        assert_eq!(format_clock(12 * 60), "noon");
        assert_eq!(
            parse_hours("9am-5pm").unwrap(),
            parse_hours("9:00-17:00").unwrap()
        );
        assert_eq!(
            parse_hours("7am to noon and 1pm - 6:30 pm").unwrap(),
            parse_hours("7:00-12:00; 13:00-18:30").unwrap()
        );
        assert!(
            parse_hours("9am-5").is_ok(),
            "5 is 05:00: runs past midnight"
        );
        assert!(parse_hours("nine to five").is_err());
        assert!(parse_hours("13pm-14pm").is_err());
    }

    #[test]
    fn a_range_past_midnight_closes_the_next_day() {
        let spans = parse_hours("18:00-2:00").unwrap();
        assert_eq!(
            spans,
            vec![OpenSpan {
                opens: 18 * 60,
                closes: 26 * 60
            }]
        );
        assert!(spans[0].past_midnight());
        assert_eq!(format_spans(&spans), "6pm to 2am");
        // Ending at midnight is the end of the same day, not a day-long range.
        for written in ["18:00-0:00", "18:00-24:00", "6pm-midnight", "6pm-12am"] {
            assert_eq!(
                parse_hours(written).unwrap(),
                vec![OpenSpan {
                    opens: 18 * 60,
                    closes: 24 * 60
                }],
                "{written}"
            );
        }
    }

    #[test]
    fn overlapping_ranges_are_rejected_and_touching_ones_joined() {
        let error = parse_hours("7:00-12:00, 11:00-18:00").unwrap_err();
        assert!(
            error.contains("`11:00-18:00` overlaps `7:00-12:00`"),
            "{error}"
        );
        assert_eq!(
            parse_hours("12:00-18:00, 7:00-12:00").unwrap(),
            vec![OpenSpan {
                opens: 7 * 60,
                closes: 18 * 60
            }]
        );
    }
}
