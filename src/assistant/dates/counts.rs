//! Counts in customers' words: digits, number words ("twenty five", "a
//! hundred and fifty"), dozens ("two dozen", "half a dozen"), ranges ("20-25"
//! counts as 25), and counts next to a unit ("20 people", "serves 20").
//!
//! Never reads dates: the form engine blanks date mentions ("the 14th")
//! before it asks for counts.

use super::words::{tokenize, Token};

/// A small count in digits or words at `tokens[i..]`: "2", "two", "a", "twenty five".
/// Returns the value and how many tokens it used.
pub(super) fn count_at(tokens: &[Token], i: usize) -> Option<(i64, usize)> {
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
                found.push((n.saturating_mul(12), tokens[i].start, tokens[i + used].end));
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
    let mut values = Vec::new();
    for (value, start, end) in counts(text) {
        // The spans are byte offsets into `text`: slice it before lower-casing,
        // which can change lengths ('Ⱥ' is 2 bytes, 'ⱥ' 3) and so boundaries.
        let after: Vec<String> = tokenize(&text[end..].to_lowercase())
            .into_iter()
            .take(2)
            .map(|t| t.text)
            .collect();
        let before: Vec<String> = tokenize(&text[..start].to_lowercase())
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
