//! How a message is worded, read without the models: whether a sentence asks
//! something (as opposed to giving context), whether a message is about
//! allergens, whether it names an entry's title.

/// Whether a message asks about allergens or an ingredient people avoid.
pub(super) fn asks_about_allergens(message: &str) -> bool {
    const WORDS: &[&str] = &[
        "allergy",
        "allergies",
        "allergic",
        "allergen",
        "allergens",
        "nut",
        "nuts",
        "peanut",
        "peanuts",
        "gluten",
        "dairy",
        "lactose",
        "egg",
        "eggs",
        "soy",
        "sesame",
        "celiac",
        "coeliac",
        "shellfish",
    ];
    crate::text::words(message)
        .iter()
        .any(|w| WORDS.contains(&w.as_str()))
}

/// Whether `message` names `title`: every word of three letters or more in
/// the title appears in the message (stems compared).
pub(super) fn names(message: &str, title: &str) -> bool {
    let said: Vec<String> = crate::text::words(message)
        .iter()
        .map(|w| crate::text::stem(w))
        .collect();
    let wanted: Vec<String> = crate::text::words(title)
        .iter()
        .filter(|w| w.chars().count() >= 3)
        .map(|w| crate::text::stem(w))
        .collect();
    !wanted.is_empty() && wanted.iter().all(|w| said.contains(w))
}

/// An entry about allergens: its title (or document title) says so, or names one.
pub(super) fn about_allergens(entry: &crate::knowledge::Entry) -> bool {
    entry.title.to_lowercase().contains("allerg")
        || asks_about_allergens(&entry.title)
        || entry
            .context
            .as_deref()
            .is_some_and(|c| c.to_lowercase().contains("allerg"))
}

/// Whether a sentence of a message asks for something (a question mark or a
/// question word first), as opposed to context like "it's for my son's party".
pub(super) fn asks_something(sentence: &str) -> bool {
    const QUESTION_WORDS: &[&str] = &[
        "what", "whats", "what's", "when", "where", "which", "who", "why", "how", "do", "does",
        "did", "can", "could", "is", "are", "will", "would", "should", "any", "have", "has",
    ];
    // Joining words before the question: "and can you…", "also, do you…".
    const LEAD_INS: &[&str] = &["and", "also", "plus", "but", "so", "oh", "ok", "okay"];
    let sentence = sentence.trim();
    sentence.ends_with('?')
        || sentence
            .split_whitespace()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                    .to_lowercase()
            })
            .find(|w| !LEAD_INS.contains(&w.as_str()))
            .is_some_and(|w| QUESTION_WORDS.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_sentences_are_told_from_context() {
        assert!(asks_something("and can you fix bike brakes"));
        assert!(asks_something("Also, do you sell gift cards"));
        assert!(asks_something("delivery to brooklyn?"));
        assert!(asks_something("What's the price of the 8 inch one"));
        assert!(!asks_something("It's for my son's 7th birthday."));
        assert!(!asks_something("thanks so much"));
    }

    #[test]
    fn allergen_questions_are_told_apart() {
        assert!(asks_about_allergens("is the carrot cake nut free?"));
        assert!(asks_about_allergens("any gluten in the brownies"));
        assert!(!asks_about_allergens("how much is the carrot cake"));
    }
}
