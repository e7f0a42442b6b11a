//! Unit tests of the form engine, replaying conversations as eval does.

use super::values::{read_email, read_phone, read_time};
use super::*;
use crate::knowledge::forms::parse;

const FORMS: &str = r#"
[custom_cake]
title = "Custom cake order"
phrasings = ["I'd like a custom cake"]
sources = ["faq.md#do-you-make-custom-cakes"]

[[custom_cake.fields]]
name = "date"
ask = "What date do you need it for?"
type = "date"
min_days_ahead = 3
open_days_only = true

[[custom_cake.fields]]
name = "servings"
ask = "How many people should it serve?"
type = "integer"
min = 6
max = 200
units = ["people", "guests", "serve", "serves"]

[[custom_cake.fields]]
name = "flavour"
ask = "Which flavour would you like?"
type = "choice"
choices = ["vanilla", "chocolate", "red velvet"]

[[custom_cake.fields]]
name = "design"
ask = "Tell us about the design."
type = "text"
required = false

[[custom_cake.fields]]
name = "phone"
ask = "What's the best phone number to reach you?"
type = "phone"
"#;

fn forms() -> Vec<Form> {
    let mut issues = Vec::new();
    let forms = parse("forms.toml", FORMS, &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    forms
}

fn closed_mondays(date: Date) -> bool {
    date.weekday() != jiff::civil::Weekday::Monday
}

/// Replays customer messages from a Tuesday (2026-03-10), as eval does.
fn run(messages: &[&str]) -> (Step, Option<FormState>) {
    let forms = forms();
    let faq_source = SourceId("faq.md#do-you-deliver".into());
    let mut state = None;
    let mut last = Step::Pass;
    for (i, text) in messages.iter().enumerate() {
        let starts = i == 0;
        let answer = text
            .contains("deliver")
            .then_some(("Yes, we deliver within 5 miles.", &faq_source));
        let message = Message {
            text,
            today: "2026-03-10".parse().unwrap(),
            month_first: true,
            open_on: &closed_mondays,
            rule: text.contains("person").then_some(Reason::HumanRequested),
            answer,
            phrasing_match: starts.then_some((0, 0.9)),
            answer_score: 0.0,
        };
        last = step(
            &forms,
            state.clone(),
            &message,
            "A person will get back to you.",
        );
        state = match &last {
            Step::Reply { state, .. } => state.clone(),
            Step::Offer { state } => Some(state.clone()),
            Step::Pass => None,
        };
    }
    (last, state)
}

fn reply_of(step: &Step) -> (&Action, &str, Option<&FormView>) {
    match step {
        Step::Reply {
            action, text, view, ..
        } => (action, text.as_str(), view.as_ref()),
        other => panic!("not a reply: {other:?}"),
    }
}

#[test]
fn one_message_fills_three_fields() {
    let (step, state) =
        run(&["I'd like a custom cake for Saturday the 14th for 20 people, chocolate"]);
    let (action, text, view) = reply_of(&step);
    assert_eq!(*action, Action::Collect);
    let view = view.unwrap();
    assert_eq!(view.fields["date"], "2026-03-14");
    assert_eq!(view.fields["servings"], 20);
    assert_eq!(view.fields["flavour"], "chocolate");
    assert_eq!(view.missing, vec!["design", "phone"]);
    assert!(text.ends_with("Tell us about the design."), "{text}");
    assert_eq!(state.unwrap().asking, vec!["design"]);
}

#[test]
fn too_little_notice_is_one_combined_reask() {
    let (step, _) = run(&["I'd like a custom cake", "tomorrow"]);
    let (_, text, view) = reply_of(&step);
    assert!(
        text.contains("at least 3 days' notice")
            && text.contains("Friday 13 March")
            && text.ends_with("Which date works for you?"),
        "{text}"
    );
    assert!(!view.unwrap().fields.contains_key("date"));
}

#[test]
fn free_text_never_lands_in_a_field_that_was_not_asked() {
    let (step, _) = run(&["I'd like a custom cake", "a unicorn with rainbow colours"]);
    let (_, _, view) = reply_of(&step);
    assert!(view.unwrap().fields.is_empty());
}

#[test]
fn a_question_mid_form_is_answered_and_the_question_repeated() {
    let (step, state) = run(&["I'd like a custom cake", "do you deliver to brooklyn?"]);
    let (action, text, _) = reply_of(&step);
    assert_eq!(*action, Action::Collect);
    assert!(text.starts_with("Yes, we deliver"), "{text}");
    assert!(text.contains("What date do you need it for?"), "{text}");
    assert_eq!(state.unwrap().asking, vec!["date", "servings"]);
}

#[test]
fn a_correction_replaces_the_date() {
    let (step, _) = run(&[
        "I'd like a custom cake for Saturday the 14th",
        "actually make it sunday the 15th",
    ]);
    let (_, _, view) = reply_of(&step);
    assert_eq!(view.unwrap().fields["date"], "2026-03-15");
}

#[test]
fn never_mind_cancels_and_clears() {
    let (step, state) = run(&["I'd like a custom cake for Saturday the 14th", "never mind"]);
    let (action, text, _) = reply_of(&step);
    assert_eq!(*action, Action::Answer);
    assert!(text.contains("cancelled"));
    assert!(state.is_none());
}

#[test]
fn three_failed_answers_hand_over_with_what_was_collected() {
    let (step, state) = run(&[
        "I'd like a custom cake for 20 people",
        "hmm not sure",
        "whenever really",
        "idk",
    ]);
    let (action, _, view) = reply_of(&step);
    assert_eq!(*action, Action::Escalate);
    assert_eq!(view.unwrap().fields["servings"], 20);
    assert!(state.is_none());
}

#[test]
fn the_confirmation_reads_dates_back_and_yes_escalates() {
    let (step, _) = run(&[
        "I'd like a custom cake for Saturday the 14th for 20 people, chocolate",
        "a unicorn",
        "718-555-0142",
    ]);
    let (action, text, _) = reply_of(&step);
    assert_eq!(*action, Action::Collect);
    assert!(text.contains("- Date: Saturday 14 March"), "{text}");
    assert!(text.contains("- Phone: +17185550142"), "{text}");
    let (step, state) = run(&[
        "I'd like a custom cake for Saturday the 14th for 20 people, chocolate",
        "a unicorn",
        "718-555-0142",
        "yes that's right",
    ]);
    let (action, _, view) = reply_of(&step);
    assert_eq!(*action, Action::Escalate);
    let view = view.unwrap();
    assert!(view.completed);
    assert_eq!(view.fields["design"], "a unicorn");
    assert!(state.is_none());
}

#[test]
fn a_request_for_a_person_hands_over_mid_form() {
    let (step, _) = run(&[
        "I'd like a custom cake for 20 people",
        "can I talk to a person",
    ]);
    let (action, _, view) = reply_of(&step);
    assert_eq!(*action, Action::Escalate);
    assert_eq!(view.unwrap().fields["servings"], 20);
}

#[test]
fn phones_times_and_emails() {
    assert_eq!(
        read_phone("call me at (718) 555-0142", true).as_deref(),
        Some("+17185550142")
    );
    assert_eq!(
        read_phone("+44 20 7946 0958", false).as_deref(),
        Some("+442079460958")
    );
    assert_eq!(read_phone("20 people", true), None);
    assert_eq!(read_time("around 3:30 pm").as_deref(), Some("15:30"));
    assert_eq!(read_time("for 20 people"), None);
    assert_eq!(
        read_email("it's Jo.Smith@Example.com.").as_deref(),
        Some("jo.smith@example.com")
    );
}

#[test]
fn the_senders_number_fills_an_empty_phone_field_but_not_one_being_asked() {
    let forms = forms();
    let form = &forms[0];
    let mut state = FormState::new(form, Stage::Collecting);
    assert!(!state.prefill_phone(form, "15551234567"), "not E.164");
    assert!(state.prefill_phone(form, "+15551234567"));
    assert_eq!(
        state.captured().get("phone"),
        Some(&serde_json::json!("+15551234567"))
    );
    assert!(!state.prefill_phone(form, "+15550000000"), "already filled");

    let mut asked = FormState::new(form, Stage::Collecting);
    asked.asking = vec!["phone".into()];
    assert!(!asked.prefill_phone(form, "+15551234567"));
}
