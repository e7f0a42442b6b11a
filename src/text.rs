//! Small text helpers shared by retrieval and the decision: sentence splitting,
//! texting shorthand expansion, quantities. Pure functions, no I/O.

/// Splits on `.`, `!`, `?` and line breaks, keeping the punctuation.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let ends = matches!(b, b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace())
                // "$4.50" and "e.g." are not sentence ends.
                && !(b == b'.' && i > 0 && bytes[i - 1].is_ascii_digit() && bytes.get(i + 1).is_some_and(|n| n.is_ascii_digit()));
            if ends {
                let part = line[start..=i].trim();
                if !part.is_empty() {
                    parts.push(part);
                }
                start = i + 1;
            }
        }
        let rest = line[start..].trim();
        if !rest.is_empty() {
            parts.push(rest);
        }
    }
    parts
}

/// Texting shorthand → words, so both retrievers see "do you deliver" in "do u deliver".
const SHORTHAND: &[(&str, &str)] = &[
    ("u", "you"),
    ("ya", "you"),
    ("yu", "you"),
    ("ur", "your"),
    ("r", "are"),
    ("y", "why"),
    ("pls", "please"),
    ("plz", "please"),
    ("thx", "thanks"),
    ("ty", "thank you"),
    ("wat", "what"),
    ("wut", "what"),
    ("wats", "what is"),
    ("whats", "what is"),
    ("hw", "how"),
    ("wen", "when"),
    ("cuz", "because"),
    ("bc", "because"),
    ("b4", "before"),
    ("2day", "today"),
    ("2moro", "tomorrow"),
    ("2morrow", "tomorrow"),
    ("tmrw", "tomorrow"),
    ("tmr", "tomorrow"),
    ("tom", "tomorrow"),
    ("2nite", "tonight"),
    ("tonite", "tonight"),
    ("gonna", "going to"),
    ("wanna", "want to"),
    ("gotta", "have to"),
    ("dont", "do not"),
    ("cant", "cannot"),
    ("wont", "will not"),
    ("im", "i am"),
    ("ive", "i have"),
    ("doesnt", "does not"),
    ("isnt", "is not"),
    ("didnt", "did not"),
    ("hv", "have"),
    ("abt", "about"),
    ("msg", "message"),
    ("ppl", "people"),
    ("bday", "birthday"),
    ("b-day", "birthday"),
    ("hrs", "hours"),
    ("hr", "hour"),
    ("mins", "minutes"),
    ("min", "minimum"),
    ("approx", "approximately"),
    ("info", "information"),
    ("ok", "okay"),
    ("k", "okay"),
    ("n", "and"),
    ("w/", "with"),
    ("w/o", "without"),
    ("&", "and"),
    ("gf", "gluten-free"),
    ("sat", "saturday"),
    ("sun", "sunday"),
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("tues", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("thurs", "thursday"),
    ("fri", "friday"),
];

/// Lower-cases nothing and keeps punctuation; only whole-word shorthand changes.
pub fn expand_shorthand(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let core =
            word.trim_matches(|c: char| !c.is_alphanumeric() && c != '/' && c != '&' && c != '-');
        let lowered = core.to_lowercase();
        let replacement = SHORTHAND
            .iter()
            .find(|(short, _)| *short == lowered)
            .map(|(_, long)| *long);
        match replacement {
            Some(long) if !core.is_empty() => out.push_str(&word.replacen(core, long, 1)),
            _ => out.push_str(word),
        }
    }
    out
}

/// Words too common to say what a message is about.
pub const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "were",
    "be",
    "do",
    "does",
    "did",
    "you",
    "your",
    "i",
    "me",
    "my",
    "we",
    "our",
    "it",
    "its",
    "this",
    "that",
    "to",
    "of",
    "in",
    "on",
    "at",
    "for",
    "and",
    "or",
    "so",
    "what",
    "how",
    "when",
    "where",
    "which",
    "who",
    "can",
    "could",
    "would",
    "will",
    "have",
    "has",
    "hi",
    "hello",
    "hey",
    "please",
    "thanks",
    "thank",
    "ok",
    "okay",
    "yes",
    "no",
    "about",
    "with",
    "much",
    "any",
    "there",
    "they",
    "them",
    "one",
    "other",
    "thing",
    "things",
    "just",
    "also",
    "too",
    "still",
    "again",
    "then",
    "now",
    "well",
    "oh",
    "um",
    "hmm",
    "u",
    "ur",
    "r",
    "im",
    "i'm",
    "get",
    "got",
    "need",
    "want",
    "like",
    "know",
    "if",
    "from",
    "by",
    "as",
    "up",
    "out",
    "some",
    "all",
    "here",
    "dont",
    "don't",
    "can't",
    "cant",
    "whats",
    "what's",
    "tell",
    "give",
    "make",
    "made",
    "many",
    "lot",
    "really",
    "very",
    "not",
    "but",
    "should",
    "shall",
    "may",
    "might",
    "am",
    "been",
    "being",
    "he",
    "she",
    "his",
    "her",
    "their",
    "us",
    "than",
    "these",
    "those",
    "into",
    "over",
    "guys",
    "yall",
    "y'all",
    "lol",
    "pls",
    "plz",
    "thx",
    "hiya",
    "dear",
    "regards",
    "best",
    "cheers",
    "team",
    "there's",
    "it's",
    "i'd",
    "i'll",
    "we're",
    "you're",
    "let",
    "go",
    "going",
    "see",
    "way",
    "day",
    "today",
    "would",
    "wondering",
    "quick",
    "question",
    "questions",
    "possible",
    "able",
    "etc",
    "stuff",
    "something",
    "anything",
    "someone",
    "anyone",
    "time",
];

/// Words of `text` that carry its topic: not stop words, at least 3 letters.
pub fn content_words(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// A light suffix stripper so "deliveries", "delivered" and "delivery" meet.
pub fn stem(word: &str) -> String {
    let word = word.trim_end_matches("'s");
    let long_enough = |root: &str| root.chars().count() >= 3;
    if let Some(root) = word.strip_suffix("ies").filter(|r| long_enough(r)) {
        return format!("{root}y");
    }
    for suffix in ["ing", "ed"] {
        if let Some(root) = word.strip_suffix(suffix).filter(|r| long_enough(r)) {
            return root.to_string();
        }
    }
    if let Some(root) = word.strip_suffix("es").filter(|r| {
        long_enough(r) && (r.ends_with(['s', 'x', 'z']) || r.ends_with("ch") || r.ends_with("sh"))
    }) {
        return root.to_string();
    }
    if let Some(root) = word
        .strip_suffix('s')
        .filter(|r| long_enough(r) && !r.ends_with('s'))
    {
        return root.to_string();
    }
    word.to_string()
}

/// True when `a` and `b` differ by at most one insertion, deletion or substitution.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let (mut i, mut j, mut edits) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            i += 1;
            j += 1;
            continue;
        }
        edits += 1;
        if edits > 1 {
            return false;
        }
        match a.len().cmp(&b.len()) {
            std::cmp::Ordering::Greater => i += 1,
            std::cmp::Ordering::Less => j += 1,
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    edits + (a.len() - i) + (b.len() - j) <= 1
}

/// Lower-case words made of letters, digits and apostrophes.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

const NUMBER_WORDS: &[(&str, u32)] = &[
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("fifteen", 15),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("hundred", 100),
    ("a", 1),
    ("an", 1),
];

/// Words after a number that say it is not a count of items.
const NOT_ITEMS: &[&str] = &[
    "am", "pm", "th", "st", "nd", "rd", "minutes", "minute", "mins", "hours", "hour", "hrs",
    "days", "day", "weeks", "week", "months", "month", "years", "year", "miles", "mile", "km",
    "dollars", "dollar", "bucks", "percent", "inch", "inches", "in", "oz", "lb", "lbs", "pounds",
    "kg", "o'clock", "people's", "yo", "tier", "tiers", "layer", "layers", "ft", "feet", "times",
    "stars", "star",
];

/// Words before a number that make it an age.
const AGE_LEAD_INS: &[&str] = &["turns", "turning", "turned", "aged", "age", "ages"];

/// The largest number of items a message asks for: "5 dozen cupcakes" → 60,
/// "100 cookies" → 100, "a dozen" → 12. Money, times, dates and sizes are skipped.
pub fn largest_item_count(text: &str) -> Option<u32> {
    let lowered = text.to_lowercase();
    let tokens: Vec<&str> = lowered
        .split(|c: char| {
            c.is_whitespace() || c == ',' || c == '(' || c == ')' || c == '!' || c == '?'
        })
        .filter(|t| !t.is_empty())
        .collect();
    let mut best: Option<u32> = None;
    for (i, token) in tokens.iter().enumerate() {
        if token.starts_with('$')
            || token.starts_with('£')
            || token.starts_with('€')
            || token.contains(':')
            || token.contains('/')
        {
            continue;
        }
        let trimmed = token.trim_end_matches(['.', ';']);
        let (digits, suffix): (String, String) = {
            let d: String = trimmed.chars().take_while(|c| c.is_ascii_digit()).collect();
            let s = trimmed[d.len()..].to_string();
            (d, s)
        };
        let mut count = if !digits.is_empty() {
            if !suffix.is_empty() && suffix != "x" {
                continue; // 5pm, 3rd, 8in, 10am
            }
            match digits.parse::<u32>() {
                Ok(n) => n,
                Err(_) => continue,
            }
        } else if let Some((_, n)) = NUMBER_WORDS.iter().find(|(w, _)| *w == trimmed) {
            *n
        } else if trimmed == "dozen" || trimmed == "dozens" {
            // "dozen" without a number before it: handled by the multiplier below.
            if i > 0
                && (tokens[i - 1].chars().all(|c| c.is_ascii_digit())
                    || NUMBER_WORDS.iter().any(|(w, _)| *w == tokens[i - 1]))
            {
                continue;
            }
            if trimmed == "dozens" {
                24
            } else {
                12
            }
        } else {
            continue;
        };
        // An age, not a count: "turns 6", "aged 7", "7 years old", "my
        // daughter is 7", "she's 7 and".
        if i > 0 && AGE_LEAD_INS.contains(&tokens[i - 1]) {
            continue;
        }
        let after = tokens.get(i + 1).map(|t| t.trim_matches(['.', ';']));
        if matches!(
            after,
            Some("years" | "year" | "yrs" | "yr" | "yo" | "y/o" | "months")
        ) && !matches!(
            tokens.get(i + 2).map(|t| t.trim_matches(['.', ';'])),
            Some("ago")
        ) {
            continue;
        }
        let clause_ends = matches!(after, None | Some("" | "and" | "but" | "so" | "now"));
        if i > 0
            && matches!(
                tokens[i - 1],
                "is" | "he's" | "she's" | "who's" | "hes" | "shes"
            )
            && (clause_ends || token.ends_with('.'))
        {
            continue;
        }
        let mut next = i + 1;
        if tokens
            .get(next)
            .is_some_and(|t| t.trim_end_matches(['.', ';']) == "dozen")
        {
            count = count.saturating_mul(12);
            next += 1;
        } else if tokens.get(next).is_some_and(|t| *t == "hundred") {
            count = count.saturating_mul(100);
            next += 1;
        }
        let following = tokens
            .get(next)
            .map(|t| t.trim_end_matches(['.', ';']))
            .unwrap_or("");
        if NOT_ITEMS.contains(&following) || following.starts_with('-') {
            continue;
        }
        // A bare number with nothing after it ("order 3") is still a count; a
        // year-like number ("2026") is not.
        if (1900..2100).contains(&count) && digits.len() == 4 {
            continue;
        }
        if matches!(trimmed, "a" | "an") && count == 1 {
            continue;
        }
        best = Some(best.map_or(count, |b| b.max(count)));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_but_prices_stay_whole() {
        assert_eq!(
            sentences("Hi! Is it $4.50 each? Thanks"),
            vec!["Hi!", "Is it $4.50 each?", "Thanks"]
        );
        assert_eq!(sentences("one\ntwo."), vec!["one", "two."]);
    }

    #[test]
    fn shorthand_expands_whole_words_only() {
        assert_eq!(
            expand_shorthand("do u deliver 2moro?? thx"),
            "do you deliver tomorrow?? thanks"
        );
        assert_eq!(expand_shorthand("umbrella ur"), "umbrella your");
    }

    #[test]
    fn stems_and_typos() {
        assert_eq!(stem("deliveries"), stem("delivery"));
        assert_eq!(stem("cakes"), "cake");
        assert!(within_one_edit("delivry", "delivery"));
        assert!(within_one_edit("cake", "bake"));
        assert!(!within_one_edit("cake", "coke!"));
        assert_eq!(
            content_words("do u have any Funfetti cakes??"),
            vec!["funfetti", "cakes"]
        );
    }

    #[test]
    fn item_counts_skip_money_times_and_sizes() {
        assert_eq!(
            largest_item_count("I need 5 dozen cupcakes for friday"),
            Some(60)
        );
        assert_eq!(largest_item_count("100 cookies pls"), Some(100));
        assert_eq!(largest_item_count("how much is a dozen cookies"), Some(12));
        assert_eq!(
            largest_item_count("is the 8 inch cake $42? pick up at 5pm on the 3rd"),
            None
        );
        assert_eq!(largest_item_count("delivery within 5 miles in 2026"), None);
        assert_eq!(largest_item_count("two croissants"), Some(2));
        assert_eq!(
            largest_item_count("for all of us (my daughter is 7). Are you"),
            None
        );
        assert_eq!(largest_item_count("my son is 8 and needs a cleaning"), None);
        assert_eq!(largest_item_count("cake for a 10 year old"), None);
        assert_eq!(largest_item_count("the order is 50 cupcakes"), Some(50));
    }
}
