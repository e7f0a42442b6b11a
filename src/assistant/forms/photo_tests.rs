//! The optional photo field: asked once with the question before it, taken
//! from an `[attachment:ID]` marker at any point, skipped by any other
//! answer, and asked again, with the reason, when a photo did not come through.

use super::*;
use crate::knowledge::forms::parse;

const FORMS: &str = r#"
[custom_cake]
title = "Custom cake order"
phrasings = ["I'd like a custom cake"]

[[custom_cake.fields]]
name = "servings"
ask = "How many people should it serve?"
type = "integer"

[[custom_cake.fields]]
name = "design"
ask = "Tell us about the design."
type = "text"
required = false

[[custom_cake.fields]]
name = "photo"
ask = "Send a photo if you have one."
type = "photo"
required = false

[[custom_cake.fields]]
name = "name"
ask = "What name should we put it under?"
type = "text"
"#;

/// Replays customer messages; returns the last reply's text and the state.
fn run(messages: &[&str]) -> (String, FormState) {
    let mut issues = Vec::new();
    let forms = parse("forms.toml", FORMS, &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    let mut state = None;
    let mut last = String::new();
    for (i, text) in messages.iter().enumerate() {
        let message = Message {
            text,
            today: "2026-03-10".parse().unwrap(),
            month_first: true,
            open_on: &|_| true,
            rule: None,
            answer: None,
            phrasing_match: (i == 0).then_some((0, 0.9)),
            answer_score: 0.0,
        };
        match step(
            &forms,
            state.clone(),
            &message,
            "A person will get back to you.",
        ) {
            Step::Reply {
                text, state: next, ..
            } => {
                last = text;
                state = next;
            }
            other => panic!("not a reply: {other:?}"),
        }
    }
    (last, state.expect("the form goes on"))
}

fn status(state: &FormState, field: &str) -> FieldState {
    state.fields[field].clone()
}

#[test]
fn the_photo_is_asked_once_together_with_the_design() {
    let (text, state) = run(&["I'd like a custom cake for 20 people"]);
    assert_eq!(text, "I can take the details for your custom cake order and pass them to the team. Tell us about the design. Send a photo if you have one.");
    assert_eq!(state.asking, vec!["design", "photo"]);
}

#[test]
fn words_alone_fill_the_design_and_move_past_the_photo() {
    let (text, state) = run(&["I'd like a custom cake for 20 people", "a white unicorn"]);
    assert_eq!(text, "Thanks! What name should we put it under?");
    assert_eq!(
        state.value("design"),
        Some(&serde_json::json!("a white unicorn"))
    );
    assert_eq!(status(&state, "photo"), FieldState::Skipped);
}

#[test]
fn a_photo_alone_fills_the_photo_and_answers_the_design() {
    let (text, state) = run(&[
        "I'd like a custom cake for 20 people",
        "[attachment:0123456789abcdef0123456789abcdef]",
    ]);
    assert_eq!(text, "Thanks! What name should we put it under?");
    assert_eq!(
        state.value("photo"),
        Some(&serde_json::json!("0123456789abcdef0123456789abcdef"))
    );
    assert_eq!(status(&state, "design"), FieldState::Skipped);
}

#[test]
fn a_photo_with_a_caption_fills_both() {
    let (_, state) = run(&[
        "I'd like a custom cake for 20 people",
        "[attachment:0123456789abcdef0123456789abcdef] like this but blue",
    ]);
    assert_eq!(
        state.value("design"),
        Some(&serde_json::json!("like this but blue"))
    );
    assert!(state.value("photo").is_some());
}

#[test]
fn no_photo_skips_both_optional_questions() {
    let (text, state) = run(&["I'd like a custom cake for 20 people", "no photo"]);
    assert_eq!(text, "Thanks! What name should we put it under?");
    assert_eq!(status(&state, "photo"), FieldState::Skipped);
}

#[test]
fn a_photo_that_did_not_come_through_is_asked_for_again_with_the_reason() {
    let (text, state) = run(&[
        "I'd like a custom cake for 20 people",
        "[photo not received: it is too big]",
    ]);
    assert_eq!(
        text,
        "Sorry, your photo didn't come through: it is too big. Send a photo if you have one."
    );
    assert!(state.value("photo").is_none());
    assert_eq!(status(&state, "design"), FieldState::Empty);
    // A photo sent later, unasked, still fills it.
    let (_, state) = run(&[
        "I'd like a custom cake for 20 people",
        "[photo not received: it is too big]",
        "a blue dinosaur",
        "[attachment:0123456789abcdef0123456789abcdef]",
    ]);
    assert!(state.value("photo").is_some(), "{state:?}");
}
