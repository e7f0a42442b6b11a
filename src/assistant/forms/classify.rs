//! Classifying a customer message before anything is taken from it: a
//! cancel, a confirmation ("yes") or a refusal, a correction, an affirmative
//! start ("I'd like…"), a wish to skip an optional field, a question.
//!
//! Word and phrase tests only: never extracts a field value, never touches
//! the form state.

/// "what size…", "how do I…": asking for information, not placing a request.
pub(super) fn starts_with_question_word(text: &str) -> bool {
    const LEAD_INS: [&str; 8] = ["and", "also", "so", "ok", "okay", "hi", "hey", "hello"];
    const INFORMATION: [&str; 12] = [
        "what", "whats", "how", "which", "when", "where", "why", "who", "is", "are", "do", "does",
    ];
    words(text)
        .iter()
        .find(|w| !LEAD_INS.contains(&w.as_str()))
        .is_some_and(|w| INFORMATION.contains(&w.as_str()))
}

pub(super) fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\'', ""))
        .collect()
}

fn has_phrase(text: &str, phrases: &[&str]) -> bool {
    let padded = format!(" {} ", words(text).join(" "));
    phrases.iter().any(|p| padded.contains(&format!(" {p} ")))
}

pub(super) fn is_cancel(text: &str) -> bool {
    has_phrase(
        text,
        &[
            "never mind",
            "nevermind",
            "nvm",
            "cancel",
            "cancel it",
            "forget it",
            "forget about it",
            "dont want it",
            "dont need it",
            "changed my mind",
            "no longer need",
            "stop",
            "not anymore",
            "scratch that order",
        ],
    )
}

pub(super) fn is_yes(text: &str) -> bool {
    const YES: [&str; 18] = [
        "yes",
        "yep",
        "yeah",
        "yup",
        "ya",
        "y",
        "correct",
        "perfect",
        "confirm",
        "confirmed",
        "sure",
        "ok",
        "okay",
        "absolutely",
        "definitely",
        "right",
        "great",
        "good",
    ];
    let all = words(text);
    !all.is_empty()
        && all.len() <= 12
        && !is_no(text)
        && all.iter().take(3).any(|w| YES.contains(&w.as_str()))
}

pub(super) fn is_no(text: &str) -> bool {
    let all = words(text);
    matches!(
        all.first().map(String::as_str),
        Some("no" | "nope" | "nah" | "not" | "wrong")
    ) || has_phrase(
        text,
        &["not quite", "not right", "thats wrong", "isnt right"],
    )
}

pub(super) fn is_correction(text: &str) -> bool {
    has_phrase(
        text,
        &[
            "actually",
            "instead",
            "change",
            "make it",
            "make that",
            "i meant",
            "sorry",
            "not",
            "rather",
            "switch",
            "update",
            "wait",
            "oops",
            "correction",
        ],
    )
}

pub(super) fn is_affirmative_start(text: &str) -> bool {
    is_yes(text)
        || has_phrase(
            text,
            &[
                "id like",
                "i would like",
                "i want",
                "i wanna",
                "can i order",
                "can i get",
                "lets do it",
                "please do",
                "book",
                "order one",
                "id love",
            ],
        )
}

pub(super) fn wants_to_skip(text: &str) -> bool {
    let all = words(text);
    all.len() <= 6
        && has_phrase(
            text,
            &[
                "no",
                "none",
                "nope",
                "skip",
                "nothing",
                "n/a",
                "na",
                "not really",
                "no thanks",
                "dont mind",
                "up to you",
                "surprise me",
                "nothing special",
            ],
        )
}
