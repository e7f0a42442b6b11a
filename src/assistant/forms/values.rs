//! Readers for single typed values in free text: a clock time ("3:30 pm"
//! → "15:30"), a phone number in E.164, an email address, an attachment
//! marker, and a name without its lead-in ("my name is …").
//!
//! Pure string functions: they know nothing of forms, fields or state.

pub(super) fn strip_name_lead_in(text: &str) -> String {
    let trimmed = text.trim().trim_end_matches(['.', '!']);
    let lower = trimmed.to_lowercase();
    for lead in [
        "my name is ",
        "my name's ",
        "name is ",
        "names ",
        "name's ",
        "it's ",
        "its ",
        "i'm ",
        "im ",
        "this is ",
        "call me ",
        "under ",
        "put it under ",
        "it is ",
    ] {
        if lower.starts_with(lead) {
            return trimmed[lead.len()..].trim().to_string();
        }
    }
    trimmed.to_string()
}

/// "3pm", "3:30 pm", "15:00", "noon" → "HH:MM".
pub(super) fn read_time(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    if lower.contains("noon") || lower.contains("midday") {
        return Some("12:00".into());
    }
    let chars: Vec<char> = lower.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit()) {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let hours: u32 = chars[i..j].iter().collect::<String>().parse().ok()?;
            let mut minutes = 0;
            let mut k = j;
            let mut had_colon = false;
            if k + 2 < chars.len() + 1 && chars.get(k) == Some(&':') {
                let m: String = chars[k + 1..(k + 3).min(chars.len())].iter().collect();
                if let Ok(m) = m.parse::<u32>() {
                    minutes = m;
                    k += 3;
                    had_colon = true;
                }
            }
            let rest: String = chars[k..].iter().collect::<String>();
            let rest = rest.trim_start();
            let hours = if rest.starts_with("pm") || rest.starts_with("p.m") {
                Some(if hours == 12 { 12 } else { hours + 12 })
            } else if rest.starts_with("am") || rest.starts_with("a.m") {
                Some(if hours == 12 { 0 } else { hours })
            } else if had_colon {
                Some(hours)
            } else {
                None
            };
            if let Some(hours) = hours.filter(|h| *h < 24 && minutes < 60) {
                return Some(format!("{hours:02}:{minutes:02}"));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

/// A phone number in E.164: "+1 718-555-0142", "(718) 555 0142", "7185550142".
pub(super) fn read_phone(text: &str, north_american: bool) -> Option<String> {
    let mut best: Option<String> = None;
    let mut current = String::new();
    let mut plus = false;
    let flush = |current: &mut String, plus: &mut bool, best: &mut Option<String>| {
        let digits = std::mem::take(current);
        let had_plus = std::mem::replace(plus, false);
        let e164 = if had_plus && (8..=15).contains(&digits.len()) {
            Some(format!("+{digits}"))
        } else if north_american && digits.len() == 10 {
            Some(format!("+1{digits}"))
        } else if north_american && digits.len() == 11 && digits.starts_with('1') {
            Some(format!("+{digits}"))
        } else {
            None
        };
        if best.is_none() {
            *best = e164;
        }
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            current.push(c);
        } else if c == '+' && current.is_empty() {
            plus = true;
        } else if matches!(c, ' ' | '-' | '.' | '(' | ')') && (!current.is_empty() || plus) {
            continue;
        } else {
            flush(&mut current, &mut plus, &mut best);
        }
    }
    flush(&mut current, &mut plus, &mut best);
    best
}

pub(super) fn read_email(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| {
                !c.is_alphanumeric() && c != '@' && c != '.' && c != '_' && c != '-' && c != '+'
            })
            .trim_end_matches('.')
        })
        .find(|w| {
            let Some((user, domain)) = w.split_once('@') else {
                return false;
            };
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        .map(str::to_lowercase)
}

/// What stands in the text the engine reads for a photo the customer sent
/// that was not kept (too large, not a picture, the download failed):
/// `[photo not received: <reason in plain words>]`.
pub const PHOTO_NOT_RECEIVED: &str = "[photo not received: ";

/// The reason of a [`PHOTO_NOT_RECEIVED`] marker, if the text has one.
pub(super) fn read_photo_not_received(text: &str) -> Option<String> {
    let start = text.find(PHOTO_NOT_RECEIVED)? + PHOTO_NOT_RECEIVED.len();
    let reason: String = text[start..].chars().take_while(|c| *c != ']').collect();
    Some(reason.trim().to_string())
}

/// The text without attachment markers (`[attachment:ID]`, `[image]`, a
/// photo not received): what the customer wrote around a photo.
pub(super) fn without_photo_markers(text: &str) -> String {
    let mut rest = text.to_string();
    for opening in ["[attachment:", PHOTO_NOT_RECEIVED, "[image]"] {
        while let Some(start) = rest.find(opening) {
            let end = rest[start..]
                .find(']')
                .map_or(rest.len(), |offset| start + offset + 1);
            rest.replace_range(start..end, " ");
        }
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An attachment marker: `[attachment:ID]` (a stored attachment's id) or
/// `[image]` where a picture came without one (eval lines, the CLI).
pub(super) fn read_photo(text: &str) -> Option<String> {
    if let Some(start) = text.find("[attachment:") {
        let rest = &text[start + "[attachment:".len()..];
        let id: String = rest.chars().take_while(|c| *c != ']').collect();
        if !id.trim().is_empty() {
            return Some(id.trim().to_string());
        }
    }
    text.contains("[image]").then(|| "[image]".to_string())
}
