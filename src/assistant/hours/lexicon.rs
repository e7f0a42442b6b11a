//! The words every part of the hours module shares: the word splitter
//! (lower-cased, `a.m.`/`p.m.` joined), the stem used to match names
//! ("Christmas's", "xmas"), and the weekday names.
//!
//! Vocabulary only: no reading of questions, no replies.

use jiff::civil::Weekday;

pub(super) const WEEKDAY_NAMES: [(&str, Weekday); 7] = [
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

/// Other names customers use for a word of a holiday's name.
const HOLIDAY_ALIASES: &[(&str, &str)] = &[("xmas", "christmas"), ("x-mas", "christmas")];

/// Lower-cased words; `'` kept inside words, `a.m.`/`p.m.` joined.
pub(super) fn words(text: &str) -> Vec<String> {
    let lowered = text
        .to_lowercase()
        .replace(['’', '‘'], "'")
        .replace("a.m.", "am")
        .replace("p.m.", "pm");
    lowered
        .split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '\'' || c == '@'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == ':'))
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// A word stripped of a plural or possessive ending, for name matching.
pub(super) fn stem(word: &str) -> String {
    let word = word.trim_end_matches("'s");
    let word = HOLIDAY_ALIASES
        .iter()
        .find(|(alias, _)| *alias == word)
        .map_or(word, |(_, name)| name);
    match word.strip_suffix('s') {
        Some(root) if root.len() >= 3 => root.to_string(),
        _ => word.to_string(),
    }
}
