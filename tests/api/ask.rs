use crate::helpers::*;

#[test]
fn ask_json_has_the_formats_fields_and_answers_from_the_knowledge() {
    let output = frontdesk(&[
        "ask",
        "--json",
        "--channel",
        "whatsapp",
        "do u deliver to brooklyn?",
    ]);
    let value = json(&output);
    let object = value.as_object().unwrap();
    for key in [
        "action",
        "reason",
        "confidence",
        "reply",
        "sources",
        "timings_ms",
    ] {
        assert!(object.contains_key(key), "missing {key}: {value}");
    }
    assert_eq!(value["action"], "answer", "{value}");
    assert!(value["reason"].is_null());
    let confidence = value["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    let top = value["sources"][0].as_str().unwrap();
    assert!(top.contains("deliver"), "top source {top}");
    for key in ["retrieve", "generate", "total"] {
        assert!(value["timings_ms"][key].as_f64().is_some(), "{value}");
    }
}

#[test]
fn asking_for_a_person_escalates_with_the_handover_message() {
    let value = json(&frontdesk(&[
        "ask",
        "--json",
        "I want to speak to a real person please",
    ]));
    assert_eq!(value["action"], "escalate");
    assert_eq!(value["reason"], "human_requested");
    assert!(!value["reply"].as_str().unwrap().is_empty());
}

#[test]
fn a_question_nothing_covers_is_out_of_scope_not_the_nearest_answer() {
    let value = json(&frontdesk(&[
        "ask",
        "--json",
        "can you help me fix the transmission on my car?",
    ]));
    assert_eq!(value["action"], "escalate", "{value}");
    assert_eq!(value["reason"], "out_of_scope", "{value}");
}

#[test]
fn sms_replies_fit_in_two_segments() {
    let value = json(&frontdesk(&[
        "ask",
        "--json",
        "--channel",
        "sms",
        "what allergens are in your cakes",
    ]));
    assert!(
        value["reply"].as_str().unwrap().chars().count() <= 320,
        "{value}"
    );
}
