//! Warnings for content that loads but is probably a mistake: the same question
//! under two entries, an empty answer, a price in prose that disagrees with menu.toml.

use super::business::Business;
use super::menu::MenuItem;
use super::{Entry, EntryKind, Issue};
use std::collections::HashMap;

fn normalise(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Amounts written as `$12` or `$12.50` in `text`.
pub(crate) fn prices_in(text: &str, currency: &str) -> Vec<f64> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(currency) {
        rest = &rest[at + currency.len()..];
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
            .collect();
        let number = number.trim_end_matches(['.', ',']).replace(',', "");
        if let Ok(amount) = number.parse::<f64>() {
            found.push(amount);
        }
    }
    found
}

pub(super) fn check(
    entries: &[Entry],
    menu: &[MenuItem],
    business: &Business,
    issues: &mut Vec<Issue>,
) {
    let mut first_seen: HashMap<String, &Entry> = HashMap::new();
    for entry in entries.iter().filter(|e| e.kind != EntryKind::Business) {
        for phrasing in &entry.phrasings {
            let key = normalise(phrasing);
            if key.is_empty() {
                continue;
            }
            match first_seen.get(&key) {
                Some(other) if other.source != entry.source => issues.push(Issue::warning(
                    &entry.path,
                    entry.line,
                    format!(
                        "\"{phrasing}\" is also a phrasing of {} ({}:{}); the bot cannot tell them apart",
                        other.source, other.path, other.line
                    ),
                )),
                Some(_) => {}
                None => {
                    first_seen.insert(key, entry);
                }
            }
        }
        if matches!(entry.kind, EntryKind::Faq | EntryKind::Section)
            && entry.answer.trim().is_empty()
        {
            issues.push(Issue::warning(
                &entry.path,
                entry.line,
                format!("\"{}\" has no answer text", entry.title),
            ));
        }
    }

    // A sentence that names exactly one menu item and states a price that the
    // menu does not have for it.
    let names: Vec<(String, &MenuItem)> = menu
        .iter()
        .map(|item| (normalise(&item.name), item))
        .collect();
    for entry in entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Faq | EntryKind::Section))
    {
        for (offset, line) in entry.answer.lines().enumerate() {
            for sentence in line.split_inclusive(['.', '!', '?', ';']) {
                let amounts = prices_in(sentence, &business.currency);
                if amounts.is_empty() {
                    continue;
                }
                let lowered = format!(" {} ", normalise(sentence));
                let named: Vec<&MenuItem> = names
                    .iter()
                    .filter(|(name, _)| lowered.contains(&format!(" {name} ")))
                    .map(|(_, item)| *item)
                    .collect();
                if let [item] = named.as_slice() {
                    for amount in amounts {
                        if !item
                            .prices
                            .iter()
                            .any(|p| (p.amount - amount).abs() < 0.005)
                        {
                            let known: Vec<String> = item
                                .prices
                                .iter()
                                .map(|p| super::menu::format_price(&business.currency, p.amount))
                                .collect();
                            issues.push(Issue::warning(
                                &entry.path,
                                entry.answer_line + offset,
                                format!(
                                    "says {}{amount} for {}, but menu.toml:{} has {}",
                                    business.currency,
                                    item.name,
                                    item.line,
                                    known.join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_found_in_prose() {
        assert_eq!(
            prices_in("From $42, or $1,200.50 for a wedding. $", "$"),
            vec![42.0, 1200.5]
        );
        assert_eq!(prices_in("no prices here", "$"), Vec::<f64>::new());
    }
}
