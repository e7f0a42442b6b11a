//! Unit tests of reading hours questions, the computed answers and the hand-over sentence.

use super::*;
use crate::knowledge::business::EscalationSettings;
use crate::knowledge::business::{parse_hours, Closure, SpecialHours};
use crate::knowledge::hours::Schedule;
use jiff::civil::date;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// The sample bakery's week, with its Christmas closures and a special Christmas Eve.
fn bakery() -> Schedule {
    let weekly = [
        "closed",
        "7:00-18:00",
        "7:00-18:00",
        "7:00-18:00",
        "7:00-20:00",
        "8:00-20:00",
        "8:00-14:00",
    ]
    .map(|d| parse_hours(d).unwrap());
    let closure = |first: Date, last: Date, reason: &str| Closure {
        first,
        last,
        reason: Some(reason.into()),
    };
    Schedule::new(
        weekly,
        vec![
            closure(date(2026, 12, 25), date(2026, 12, 25), "Christmas Day"),
            closure(
                date(2026, 12, 26),
                date(2026, 12, 26),
                "Staff holiday after Christmas",
            ),
            closure(date(2027, 1, 1), date(2027, 1, 1), "New Year's Day"),
        ],
        vec![SpecialHours {
            date: date(2026, 12, 24),
            spans: parse_hours("7:00-15:00").unwrap(),
            reason: Some("Christmas Eve".into()),
        }],
        TimeZone::get("America/New_York").unwrap(),
    )
}

/// Asks `message` at local time `now` and returns the reply.
fn ask(message: &str, now: DateTime) -> String {
    let schedule = bakery();
    let question = read(message, now, &schedule)
        .unwrap_or_else(|| panic!("not read as an hours question: {message}"));
    let instant = schedule.instant(now).unwrap();
    answer(&question, &schedule, instant).sentences.join(" ")
}

// Tuesday 1 December 2026.
fn tuesday(hour: i8, minute: i8) -> DateTime {
    date(2026, 12, 1).at(hour, minute, 0, 0)
}

#[test]
fn open_now_says_until_when() {
    assert_eq!(
        ask("are you open now?", tuesday(14, 30)),
        "Yes — we're open until 6pm today."
    );
    assert_eq!(
        ask("open rn?", tuesday(7, 0)),
        "Yes — we're open until 6pm today."
    );
    assert_eq!(
        ask("r u still open", tuesday(18, 0)),
        "No — we're closed right now. We open again tomorrow at 7am."
    );
    assert_eq!(
        ask("are you open right now", date(2026, 11, 30).at(10, 0, 0, 0)),
        "No — we're closed right now. We open again tomorrow at 7am."
    );
}

#[test]
fn closing_time_today() {
    assert_eq!(
        ask("what time do you close today?", tuesday(9, 0)),
        "We close at 6pm today."
    );
    assert_eq!(
        ask("what time do you close today?", tuesday(19, 0)),
        "We closed at 6pm today. We open again tomorrow at 7am."
    );
    assert_eq!(
        ask("how late are you open tonight", tuesday(12, 0)),
        "We close at 6pm today."
    );
    assert_eq!(
        ask("and sunday till when", tuesday(12, 0)),
        "We close at 2pm on Sunday."
    );
}

#[test]
fn a_weekday_and_a_weekly_habit() {
    assert_eq!(
        ask("open on Sunday?", tuesday(12, 0)),
        "Yes — we're open 8am to 2pm on Sunday."
    );
    assert_eq!(
        ask("r u guys open mondays", tuesday(12, 0)),
        "No — we're closed on Mondays."
    );
    assert_eq!(
        ask("are you closed on monday?", tuesday(12, 0)),
        "Yes — we're closed on Mondays."
    );
    assert_eq!(
        ask("what time do you shut on fridays", tuesday(12, 0)),
        "We close at 8pm on Fridays."
    );
    assert_eq!(
        ask("how early do u open saturday", tuesday(12, 0)),
        "We open at 8am on Saturday (until 8pm)."
    );
}

#[test]
fn holidays_by_name_and_by_date() {
    assert_eq!(
        ask("open on Christmas?", tuesday(12, 0)),
        "No — we're closed on Friday December 25 (Christmas Day)."
    );
    assert_eq!(
        ask("xmas day open?", tuesday(12, 0)),
        "No — we're closed on Friday December 25 (Christmas Day)."
    );
    assert_eq!(
        ask("will you be open on the 26th of december?", tuesday(12, 0)),
        "No — we're closed on Saturday December 26 (Staff holiday after Christmas)."
    );
    assert_eq!(
        ask("are you open christmas eve", tuesday(12, 0)),
        "Yes — we're open 7am to 3pm on Thursday December 24."
    );
    assert_eq!(
        ask("r u open jan 1st", tuesday(12, 0)),
        "No — we're closed on Friday January 1 (New Year's Day)."
    );
    let schedule = bakery();
    let question = read("xmas day open?", tuesday(12, 0), &schedule).unwrap();
    let sources = answer(
        &question,
        &schedule,
        schedule.instant(tuesday(12, 0)).unwrap(),
    )
    .sources;
    assert_eq!(sources[0].as_str(), "business.toml#closures");
}

#[test]
fn tomorrow_morning_and_parts_of_the_day() {
    assert_eq!(
        ask("are you open tomorrow morning?", tuesday(20, 0)),
        "Yes — we're open 7am to 6pm tomorrow."
    );
    assert_eq!(
        ask("are you open sunday evening", tuesday(12, 0)),
        "No — we're open 8am to 2pm on Sunday, so not in the evening."
    );
    assert_eq!(
        ask("open tomorrow?", date(2026, 11, 29).at(12, 0, 0, 0)),
        "No — we're closed tomorrow. We open again on Tuesday at 7am."
    );
}

#[test]
fn clock_times() {
    assert_eq!(
        ask(
            "Are you guys open Sunday morning? hoping to come by around 7",
            tuesday(12, 0)
        ),
        "No — we don't open until 8am on Sunday."
    );
    assert_eq!(
        ask("open late friday? like 7ish", tuesday(12, 0)),
        "Yes — we're open 7am to 8pm on Friday."
    );
    assert_eq!(
        ask("are you open till 8 on saturday", tuesday(12, 0)),
        "Yes — we're open until 8pm on Saturday."
    );
    assert_eq!(
        ask("are you open after midnight tonight?", tuesday(12, 0)),
        "No — we close at 6pm today."
    );
    assert_eq!(
        ask("are you open at 9pm?", tuesday(12, 0)),
        "No — we close at 6pm today."
    );
}

#[test]
fn questions_without_a_time_or_about_something_else_are_not_read() {
    let schedule = bakery();
    for message in [
        "what are your hours?",
        "when are you open?",
        "what time does the post office on court st close",
        "are you open to custom orders tomorrow",
        "running super late, what happens if i dont make it before u close??",
        "how close are you to the subway today",
        "can I rent a bike for 4 hours tomorrow",
        "open on the fourth of july or nah",
        "is the post office open today?",
        "what time does the bank close tonight",
    ] {
        assert_eq!(read(message, tuesday(12, 0), &schedule), None, "{message}");
    }
}

#[test]
fn the_business_itself_may_be_the_subject() {
    let schedule = bakery();
    for message in [
        "is the shop open today?",
        "is Jasmine's Bakery open on sunday",
        "what time does the bakery close today",
        "Will the shop be open Jan 1st or are you taking the day off?",
        "hours today?",
    ] {
        assert!(
            read_for(message, tuesday(12, 0), &schedule, "Jasmine's Bakery").is_some(),
            "{message}"
        );
    }
}

#[test]
fn a_date_closed_in_another_year_is_unsettled() {
    let schedule = bakery();
    let question = read(
        "open on dec 25?",
        date(2027, 2, 1).at(12, 0, 0, 0),
        &schedule,
    )
    .unwrap();
    assert!(unsettled(&question, &schedule));
    let question = read("open on dec 23?", tuesday(12, 0), &schedule).unwrap();
    assert!(!unsettled(&question, &schedule));
}

#[test]
fn computed_replies_pass_the_grounding_verifier() {
    let schedule = bakery();
    let hours_text = "Our opening hours:\nMonday: closed\nTuesday: 7am to 6pm\nWednesday: 7am to 6pm\nThursday: 7am to 6pm\nFriday: 7am to 8pm\nSaturday: 8am to 8pm\nSunday: 8am to 2pm\nSpecial hours:\nThursday December 24, 2026 (Christmas Eve): 7am to 3pm";
    let closures_text = "We are closed on: Friday December 25, 2026 (Christmas Day); Saturday December 26, 2026 (Staff holiday after Christmas); Friday January 1, 2027 (New Year's Day).";
    for (message, now) in [
        ("open now?", tuesday(10, 0)),
        ("open now?", tuesday(22, 0)),
        ("open on christmas?", tuesday(10, 0)),
        ("christmas eve hours?", tuesday(10, 0)),
        ("open tomorrow?", date(2026, 12, 24).at(16, 0, 0, 0)),
        (
            "what time do you close today",
            date(2026, 12, 24).at(9, 0, 0, 0),
        ),
        ("are you open sunday at 10", tuesday(10, 0)),
    ] {
        let question = read(message, now, &schedule).unwrap();
        let reply = answer(&question, &schedule, schedule.instant(now).unwrap());
        let text = reply.sentences.join(" ");
        let unsupported =
            crate::assistant::grounding::unsupported_facts(&text, &[hours_text, closures_text]);
        assert!(unsupported.is_empty(), "{message}: {text}: {unsupported:?}");
    }
}

fn settings(person: Option<&str>) -> EscalationSettings {
    EscalationSettings {
        person_name: person.map(String::from),
        ..EscalationSettings::default()
    }
}

#[test]
fn hand_overs_say_when_a_person_replies() {
    let schedule = bakery();
    let at = |local: DateTime| schedule.instant(local).unwrap();
    let jasmine = settings(Some("Jasmine"));
    assert_eq!(
        reply_time(&schedule, at(tuesday(14, 0)), &jasmine),
        "Jasmine will reply within about 30 minutes."
    );
    assert_eq!(
        reply_time(&schedule, at(tuesday(20, 0)), &jasmine),
        "We're closed now; Jasmine will reply when we open, tomorrow at 7am."
    );
    assert_eq!(
            reply_time(&schedule, at(tuesday(17, 45)), &jasmine),
            "We close at 6pm today; if Jasmine can't reply before then, you'll hear back when we open, tomorrow at 7am."
        );
    // Sunday afternoon: Monday is closed, so Tuesday.
    assert_eq!(
        reply_time(
            &schedule,
            at(date(2026, 11, 29).at(15, 0, 0, 0)),
            &settings(None)
        ),
        "We're closed now; someone from our team will reply when we open, on Tuesday at 7am."
    );
    // Christmas Day: the 26th is closed too, Sunday the 27th opens at 8am.
    assert_eq!(
        reply_time(&schedule, at(date(2026, 12, 25).at(10, 0, 0, 0)), &jasmine),
        "We're closed now; Jasmine will reply when we open, on Sunday at 8am."
    );
    let hourly = EscalationSettings {
        reply_within_minutes: 60,
        ..jasmine.clone()
    };
    assert_eq!(
        reply_time(&schedule, at(tuesday(9, 0)), &hourly),
        "Jasmine will reply within about an hour."
    );
}

#[test]
fn the_owners_hand_over_message_is_kept() {
    let schedule = bakery();
    let now = schedule.instant(tuesday(20, 0)).unwrap();
    let appended = EscalationSettings {
        handover_message: "Thanks! I've passed it to the team.".into(),
        ..settings(Some("Jasmine"))
    };
    assert_eq!(
            handover_message(&appended, Some(&schedule), now),
            "Thanks! I've passed it to the team. We're closed now; Jasmine will reply when we open, tomorrow at 7am."
        );
    let placed = EscalationSettings {
        handover_message: "Got it. {reply_time} Thanks for your patience!".into(),
        ..settings(Some("Jasmine"))
    };
    assert_eq!(
            handover_message(&placed, Some(&schedule), now),
            "Got it. We're closed now; Jasmine will reply when we open, tomorrow at 7am. Thanks for your patience!"
        );
    assert_eq!(
        handover_message(&placed, None, now),
        "Got it. Thanks for your patience!"
    );
}

#[test]
fn every_day_closed_never_loops_and_says_so() {
    let weekly = ["closed"; 7].map(|d| parse_hours(d).unwrap());
    let schedule = Schedule::new(
        weekly,
        Vec::new(),
        Vec::new(),
        TimeZone::get("America/New_York").unwrap(),
    );
    let now = schedule.instant(tuesday(12, 0)).unwrap();
    assert_eq!(
        reply_time(&schedule, now, &settings(None)),
        "We're closed now; someone from our team will reply as soon as possible."
    );
    let question = read("open now?", tuesday(12, 0), &schedule).unwrap();
    assert_eq!(
        answer(&question, &schedule, now).sentences,
        vec!["No — we're closed right now.".to_string()]
    );
}

#[test]
fn a_weekday_alone_asks_whether_the_shop_is_open_then() {
    let schedule = bakery();
    for message in ["sunday?", "this saturday?", "Mondays?"] {
        assert!(
            read(message, tuesday(12, 0), &schedule).is_some(),
            "{message}"
        );
    }
    for message in ["tomorrow?", "saturday morning delivery?", "thanks"] {
        assert_eq!(read(message, tuesday(12, 0), &schedule), None, "{message}");
    }
}
