//! The grounding verifier: every number, price, quantity, time, phone number,
//! email address and URL in a reply must appear in the passages it was built
//! from. Formats are normalised first ("$5" = "5 dollars" = "five dollars",
//! "9am" = "9:00", "a dozen" = "12").

/// One checkable fact.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A money amount, in currency units.
    Money(f64),
    /// Minutes since midnight; `ambiguous` when no am/pm was given (9:00 may be 21:00).
    Time {
        minutes: u32,
        ambiguous: bool,
    },
    Phone(String),
    Email(String),
    Url(String),
    Number(f64),
}

const NUMBER_WORDS: &[(&str, f64)] = &[
    ("zero", 0.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("fifteen", 15.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("hundred", 100.0),
];

fn parse_amount(text: &str) -> Option<f64> {
    let cleaned: String = text.chars().filter(|c| *c != ',').collect();
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Extracts the facts stated in `text`.
pub fn facts(text: &str) -> Vec<Fact> {
    let mut found = Vec::new();
    let lowered = text.to_lowercase();
    let tokens: Vec<&str> = lowered.split_whitespace().collect();
    let strip = |t: &str| {
        t.trim_matches(|c: char| {
            matches!(
                c,
                '(' | ')' | ',' | ';' | '!' | '?' | '"' | '\'' | '*' | '[' | ']' | '<' | '>'
            )
        })
        .to_string()
    };
    let mut skip_next = false;
    for (i, raw) in tokens.iter().enumerate() {
        if skip_next {
            skip_next = false;
            continue;
        }
        let token = strip(raw);
        let token = token.trim_end_matches('.').to_string();
        let next = tokens
            .get(i + 1)
            .map(|t| strip(t).trim_end_matches('.').to_string())
            .unwrap_or_default();
        if token.is_empty() {
            continue;
        }
        if token.starts_with("http://")
            || token.starts_with("https://")
            || token.starts_with("www.")
        {
            found.push(Fact::Url(
                token
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_start_matches("www.")
                    .trim_end_matches('/')
                    .to_string(),
            ));
            continue;
        }
        if token.contains('@') && token.contains('.') {
            found.push(Fact::Email(token.clone()));
            continue;
        }
        let digits: String = token.chars().filter(|c| c.is_ascii_digit()).collect();
        let phone_like = token
            .chars()
            .all(|c| c.is_ascii_digit() || "+-().".contains(c));
        if digits.len() >= 7
            && phone_like
            && (token.contains('-') || token.starts_with('+') || digits.len() >= 10)
        {
            found.push(Fact::Phone(
                digits[digits.len().saturating_sub(10)..].to_string(),
            ));
            continue;
        }
        if let Some(rest) = token
            .strip_prefix('$')
            .or_else(|| token.strip_prefix('£'))
            .or_else(|| token.strip_prefix('€'))
        {
            // "$5-$8" or "$5–8"
            for part in rest.split(['-', '–']) {
                if let Some(amount) = parse_amount(part.trim_start_matches(['$', '£', '€'])) {
                    found.push(Fact::Money(amount));
                }
            }
            continue;
        }
        // times: 9am, 9:30pm, 9:00, 9 am
        let (clock, suffix) = {
            let end = token
                .find(|c: char| !(c.is_ascii_digit() || c == ':'))
                .unwrap_or(token.len());
            (&token[..end], &token[end..])
        };
        let meridiem = match suffix {
            "am" | "a.m" | "a.m." => Some(false),
            "pm" | "p.m" | "p.m." => Some(true),
            "" if matches!(next.as_str(), "am" | "a.m" | "pm" | "p.m") => {
                skip_next = true;
                Some(next.starts_with('p'))
            }
            _ => None,
        };
        if !clock.is_empty() && (meridiem.is_some() || clock.contains(':')) {
            let (h, m) = clock.split_once(':').unwrap_or((clock, "0"));
            if let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) {
                if h <= 24 && m < 60 {
                    let hours = match meridiem {
                        Some(true) if h < 12 => h + 12,
                        Some(false) if h == 12 => 0,
                        _ => h,
                    };
                    found.push(Fact::Time {
                        minutes: hours * 60 + m,
                        ambiguous: meridiem.is_none(),
                    });
                    continue;
                }
            }
        }
        if matches!(token.as_str(), "noon" | "midday") {
            found.push(Fact::Time {
                minutes: 12 * 60,
                ambiguous: false,
            });
            continue;
        }
        if token == "midnight" {
            found.push(Fact::Time {
                minutes: 0,
                ambiguous: false,
            });
            continue;
        }
        let money_word = matches!(next.as_str(), "dollars" | "dollar" | "bucks" | "usd");
        let number = if token.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            let numeric: String = token
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
                .collect();
            parse_amount(numeric.trim_end_matches(['.', ',']))
        } else if token == "dozen"
            && !tokens
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.chars().any(|c| c.is_ascii_digit()))
        {
            Some(12.0)
        } else if money_word {
            NUMBER_WORDS
                .iter()
                .find(|(w, _)| *w == token)
                .map(|(_, v)| *v)
        } else {
            None
        };
        if let Some(value) = number {
            if money_word {
                found.push(Fact::Money(value));
                skip_next = true;
            } else if next == "dozen" {
                found.push(Fact::Number(value * 12.0));
                skip_next = true;
            } else {
                found.push(Fact::Number(value));
            }
        }
    }
    found
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.005
}

fn supported(fact: &Fact, evidence: &[Fact]) -> bool {
    evidence.iter().any(|known| match (fact, known) {
        (Fact::Money(a), Fact::Money(b) | Fact::Number(b)) => same(*a, *b),
        (Fact::Number(a), Fact::Number(b) | Fact::Money(b)) => same(*a, *b),
        (Fact::Number(a), Fact::Time { minutes, .. }) => {
            // "open until 6" is backed by a 6pm closing time
            let hours = (*minutes / 60) as f64;
            *minutes % 60 == 0 && (same(*a, hours) || same(*a, hours - 12.0))
        }
        (
            Fact::Time {
                minutes: a,
                ambiguous: amb_a,
            },
            Fact::Time {
                minutes: b,
                ambiguous: amb_b,
            },
        ) => a == b || ((*amb_a || *amb_b) && (a % 720 == b % 720)),
        (Fact::Phone(a), Fact::Phone(b)) => a == b,
        (Fact::Email(a), Fact::Email(b)) => a == b,
        (Fact::Url(a), Fact::Url(b)) => a == b || a.starts_with(b.as_str()),
        _ => false,
    })
}

/// The facts in `reply` that none of `passages` states.
pub fn unsupported_facts(reply: &str, passages: &[&str]) -> Vec<Fact> {
    let evidence: Vec<Fact> = passages.iter().flat_map(|p| facts(p)).collect();
    facts(reply)
        .into_iter()
        .filter(|fact| !supported(fact, &evidence))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_match_across_formats() {
        let passage = ["Delivery is $5 within 5 miles; a 6-inch cake is $28.50."];
        assert!(unsupported_facts("It's 5 dollars to deliver.", &passage).is_empty());
        assert!(unsupported_facts("Delivery costs five dollars", &passage).is_empty());
        assert!(unsupported_facts("The cake is $28.50", &passage).is_empty());
        assert_eq!(
            unsupported_facts("The cake is $28", &passage),
            vec![Fact::Money(28.0)]
        );
        assert_eq!(
            unsupported_facts("Delivery is $4.99", &passage),
            vec![Fact::Money(4.99)]
        );
    }

    #[test]
    fn times_match_with_and_without_minutes() {
        let passage = ["Tuesday: 7am to 6pm"];
        assert!(unsupported_facts("We open at 7:00 and close at 6 pm.", &passage).is_empty());
        assert!(unsupported_facts("open till 18:00", &passage).is_empty());
        assert_eq!(
            unsupported_facts("We open at 8am", &passage),
            vec![Fact::Time {
                minutes: 480,
                ambiguous: false
            }]
        );
    }

    #[test]
    fn ranges_dozens_phones_emails_urls() {
        let passage = ["Cupcakes are sold by the dozen, $30-$36. Call +1 718-555-0142 or email hello@bakery.example, see https://bakery.example/menu"];
        assert!(unsupported_facts("A dozen costs $36.", &passage).is_empty());
        assert!(unsupported_facts("12 cupcakes for $30", &passage).is_empty());
        assert!(unsupported_facts("Call 718-555-0142", &passage).is_empty());
        assert_eq!(
            unsupported_facts("Call 718-555-9999", &passage),
            vec![Fact::Phone("7185559999".into())]
        );
        assert!(unsupported_facts("write to hello@bakery.example", &passage).is_empty());
        assert_eq!(
            unsupported_facts("write to sales@bakery.example", &passage).len(),
            1
        );
        assert!(unsupported_facts("menu: https://bakery.example/menu", &passage).is_empty());
        assert_eq!(unsupported_facts("2 dozen for $60", &passage).len(), 2);
    }
}
