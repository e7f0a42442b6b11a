//! Opening hours computed at the message's time: `ask --now … --json` on the
//! sample bakery (Mon closed, Tue-Thu 7-18, Fri 7-20, Sat 8-20, Sun 8-14;
//! Christmas Eve 7-15; closed Dec 25, Dec 26, Jan 1), hand-overs that say when
//! Jasmine replies, `check` on bad hours, and `eval/hours.jsonl`.

use crate::helpers::*;

fn ask_at(now: &str, message: &str) -> serde_json::Value {
    json(&frontdesk(&["ask", "--json", "--now", now, message]))
}

fn reply(value: &serde_json::Value) -> &str {
    value["reply"].as_str().unwrap()
}

#[test]
fn open_now_is_answered_from_the_hours_at_the_given_time() {
    let open = ask_at("2026-12-01T14:30:00", "are you open now?");
    assert_eq!(open["action"], "answer", "{open}");
    assert_eq!(reply(&open), "Yes — we're open until 6pm today.");
    assert_eq!(open["sources"][0], "business.toml#hours");

    let closed = ask_at("2026-12-01T18:00:00", "open rn?");
    assert_eq!(
        reply(&closed),
        "No — we're closed right now. We open again tomorrow at 7am."
    );
}

#[test]
fn closing_time_sunday_christmas_and_tomorrow_morning() {
    let closes = ask_at("2026-12-04T10:00:00", "what time do you close today?");
    assert_eq!(reply(&closes), "We close at 8pm today.");

    let sunday = ask_at("2026-12-01T12:00:00", "open on Sunday?");
    assert_eq!(reply(&sunday), "Yes — we're open 8am to 2pm on Sunday.");

    let christmas = ask_at("2026-12-01T12:00:00", "are you open on Christmas?");
    assert_eq!(
        reply(&christmas),
        "No — we're closed on Friday December 25 (Christmas Day)."
    );
    assert_eq!(christmas["sources"][0], "business.toml#closures");
    assert_eq!(christmas["sources"][1], "business.toml#hours");

    // Asked on a Sunday afternoon: tomorrow is Monday, closed.
    let tomorrow = ask_at("2026-12-06T16:00:00", "are you open tomorrow morning?");
    assert_eq!(
        reply(&tomorrow),
        "No — we're closed tomorrow. We open again on Tuesday at 7am."
    );
}

#[test]
fn a_question_without_a_time_still_gets_the_weekly_table() {
    let value = ask_at("2026-12-01T12:00:00", "what are your hours?");
    assert_eq!(value["action"], "answer", "{value}");
    let text = reply(&value);
    for day in ["Monday", "Sunday", "8pm"] {
        assert!(text.contains(day), "{text}");
    }
}

#[test]
fn hand_overs_say_when_jasmine_will_reply() {
    let during = ask_at(
        "2026-12-01T10:00:00",
        "I want to speak to a real person please",
    );
    assert_eq!(during["action"], "escalate");
    assert!(
        reply(&during).ends_with("Jasmine will reply within about 30 minutes."),
        "{during}"
    );
    let closed = ask_at(
        "2026-12-05T21:00:00",
        "I want to speak to a real person please",
    );
    assert!(
        reply(&closed)
            .ends_with("We're closed now; Jasmine will reply when we open, tomorrow at 8am."),
        "{closed}"
    );
    // The owner's own text comes first, as written.
    assert!(
        reply(&closed).starts_with("Thanks for your message! I've passed it to the team"),
        "{closed}"
    );
}

#[test]
fn a_bad_now_is_refused_with_the_expected_format() {
    let output = frontdesk(&["ask", "--json", "--now", "tuesday 2pm", "open now?"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--now"), "{}", stderr(&output));
}

#[test]
fn check_rejects_overlapping_and_impossible_hours_with_their_lines() {
    let dir = scratch("bad-hours");
    std::fs::write(
        dir.join("business.toml"),
        "name = \"Shop\"\ntimezone = \"America/New_York\"\n[hours]\n\
         monday = \"9:00-12:00, 11:00-17:00\"\n\
         friday = \"20:00-3:00\"\n\
         saturday = \"2:00-12:00\"\n\
         sunday = \"9:00-25:00\"\n\
         [[closed]]\nfrom = \"2026-12-24\"\nto = \"2026-12-20\"\n",
    )
    .unwrap();
    let output = frontdesk(&["check", "--knowledge", dir.to_str().unwrap()]);
    assert!(!output.status.success());
    let errors = stderr(&output);
    for expected in [
        "business.toml:4: error: `11:00-17:00` overlaps `9:00-12:00`",
        "business.toml:5: error: Friday runs past midnight to 3am, after Saturday opens at 2am",
        "business.toml:7: error: `25:00` is not a closing time",
        "business.toml:8: error: `to` (2026-12-20) is before `from` (2026-12-24)",
    ] {
        assert!(
            errors.contains(expected),
            "missing {expected:?} in:\n{errors}"
        );
    }
}

#[test]
fn the_hours_eval_set_is_answered_and_grounded() {
    let report = json(&frontdesk(&[
        "eval",
        "--questions",
        "eval/hours.jsonl",
        "--json",
    ]));
    assert!(report["questions"].as_u64().unwrap() >= 30, "{report}");
    assert_eq!(report["ungrounded_replies"], 0, "{report}");
    assert!(report["source_top1"].as_f64().unwrap() >= 0.95, "{report}");
    assert!(report["mentions_ok"].as_f64().unwrap() >= 0.95, "{report}");
    assert_eq!(report["false_escalation_rate"], 0.0, "{report}");
}
