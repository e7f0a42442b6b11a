//! Writing the reply text: the owner's own words for the chosen sources,
//! fitted to the channel. Nothing here invents a fact: every sentence comes
//! from a knowledge entry or from the owner's hand-over message.

use crate::domain::Channel;
use crate::knowledge::Entry;

/// Longest SMS reply: two segments.
pub const SMS_LIMIT: usize = 320;

/// Markdown → plain text for channels that show it raw.
pub fn plain_text(markdown: &str) -> String {
    let mut lines = Vec::new();
    for line in markdown.lines() {
        let mut line = line.trim_start_matches('#').trim().to_string();
        if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            line = format!("• {rest}");
        }
        line = line.replace("**", "").replace("__", "").replace('`', "");
        // [text](url) → text (url)
        while let (Some(open), Some(mid)) = (line.find('['), line.find("](")) {
            let Some(close) = line[mid..].find(')').map(|c| c + mid) else {
                break;
            };
            if open > mid {
                break;
            }
            let text = line[open + 1..mid].to_string();
            let url = line[mid + 2..close].to_string();
            line.replace_range(open..=close, &format!("{text} ({url})"));
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_string()
}

/// Cuts `text` at the last sentence end that fits in `limit` characters.
pub fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut kept = String::new();
    for sentence in crate::text::sentences(text) {
        let candidate = if kept.is_empty() {
            sentence.to_string()
        } else {
            format!("{kept} {sentence}")
        };
        if candidate.chars().count() > limit {
            break;
        }
        kept = candidate;
    }
    if kept.is_empty() {
        let cut: String = text.chars().take(limit.saturating_sub(1)).collect();
        kept = format!("{}…", cut.trim_end());
    }
    kept
}

/// Fits owner text to a channel's conventions.
pub fn fit_to_channel(text: &str, channel: Channel, business_name: &str) -> String {
    match channel {
        Channel::Webchat => text.trim().to_string(),
        Channel::Sms => shorten(&plain_text(text).replace('\n', " "), SMS_LIMIT),
        Channel::Whatsapp | Channel::Instagram | Channel::Messenger => plain_text(text),
        Channel::Email => format!(
            "Hello,\n\n{}\n\nBest regards,\n{business_name}",
            plain_text(text)
        ),
    }
}

/// The extractive reply: the answers of the chosen entries, in order.
pub fn extractive(entries: &[&Entry]) -> String {
    entries
        .iter()
        .map(|e| e.answer.trim())
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_replies_are_plain_and_short() {
        let long = "**Yes!** We deliver. ".repeat(40);
        let reply = fit_to_channel(&long, Channel::Sms, "Shop");
        assert!(reply.chars().count() <= SMS_LIMIT);
        assert!(!reply.contains("**"));
        assert!(reply.ends_with(['.', '!']), "{reply}");
    }

    #[test]
    fn links_and_lists_become_plain_text() {
        assert_eq!(
            plain_text("- see [our menu](https://x.test/menu)"),
            "• see our menu (https://x.test/menu)"
        );
    }

    #[test]
    fn email_has_greeting_and_sign_off() {
        let reply = fit_to_channel("We open at 7am.", Channel::Email, "Jasmine's Bakery");
        assert!(reply.starts_with("Hello,") && reply.ends_with("Jasmine's Bakery"));
    }
}
