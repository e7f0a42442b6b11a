//! Unit tests of the date and count readers.

use super::*;

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn read(text: &str, today: &str) -> DateRead {
    read_date(text, date(today), true)
}

#[test]
fn relative_days_and_weekdays() {
    let tuesday = "2026-03-10";
    assert_eq!(read("tomorrow", tuesday), DateRead::One(date("2026-03-11")));
    assert_eq!(
        read("this Saturday", tuesday),
        DateRead::One(date("2026-03-14"))
    );
    assert_eq!(
        read("next friday", tuesday),
        DateRead::One(date("2026-03-20"))
    );
    assert_eq!(
        read("a week from Sunday", tuesday),
        DateRead::One(date("2026-03-22"))
    );
    assert_eq!(
        read("in two weeks", tuesday),
        DateRead::One(date("2026-03-24"))
    );
    assert_eq!(
        read("the day after tomorrow", tuesday),
        DateRead::One(date("2026-03-12"))
    );
    // Said on a Tuesday, "Tuesday" could be today or next week.
    assert_eq!(read("tuesday", tuesday), DateRead::Unsure);
}

#[test]
fn calendar_dates_and_agreement_with_the_weekday() {
    let tuesday = "2026-03-10";
    assert_eq!(
        read("Saturday the 14th", tuesday),
        DateRead::One(date("2026-03-14"))
    );
    assert_eq!(read("friday the 14th", tuesday), DateRead::Unsure);
    assert_eq!(read("March 14", tuesday), DateRead::One(date("2026-03-14")));
    assert_eq!(read("14/3", tuesday), DateRead::One(date("2026-03-14")));
    assert_eq!(read("3/14", tuesday), DateRead::One(date("2026-03-14")));
    assert_eq!(read("the 2nd", tuesday), DateRead::One(date("2026-04-02")));
    assert_eq!(
        read("jan 3", "2026-12-28"),
        DateRead::One(date("2027-01-03"))
    );
    assert_eq!(read("on the 20th or 21st", tuesday), DateRead::Unsure);
}

#[test]
fn numbers_that_are_not_dates_stay_out() {
    let tuesday = "2026-03-10";
    assert_eq!(read("for 20 people", tuesday), DateRead::None);
    assert_eq!(read("my son's 7th birthday", tuesday), DateRead::None);
    assert_eq!(read("may I order a cake", tuesday), DateRead::None);
    assert_eq!(read("next week sometime", tuesday), DateRead::None);
    assert_eq!(read("at 3pm", tuesday), DateRead::None);
}

#[test]
fn counts_in_words_and_dozens() {
    let values = |t: &str| counts(t).into_iter().map(|c| c.0).collect::<Vec<_>>();
    assert_eq!(values("twenty"), vec![20]);
    assert_eq!(values("twenty five people"), vec![25]);
    assert_eq!(values("a dozen"), vec![12]);
    assert_eq!(values("two dozen cupcakes"), vec![24]);
    assert_eq!(values("half a dozen"), vec![6]);
    assert_eq!(values("20-25 guests"), vec![25]);
    assert_eq!(values("one hundred and fifty"), vec![150]);
    let units = vec!["people".to_string(), "guests".into(), "serves".into()];
    assert_eq!(counts_with_unit("for 20 people", &units), vec![20]);
    assert_eq!(
        counts_with_unit("my daughter turns 6", &units),
        Vec::<i64>::new()
    );
    assert_eq!(counts_with_unit("it serves 30", &units), vec![30]);
    assert_eq!(
        counts_with_unit("a cake for 40 on saturday", &units),
        vec![40]
    );
    assert_eq!(counts_with_unit("for 2 tiers", &units), Vec::<i64>::new());
}

#[test]
fn read_back_names_the_weekday() {
    assert_eq!(
        format_date(date("2026-03-14"), date("2026-03-10")),
        "Saturday 14 March"
    );
    assert_eq!(
        format_date(date("2027-01-02"), date("2026-12-28")),
        "Saturday 2 January 2027"
    );
}

/// eval/dates.jsonl: no wrong date at all, and most dates found.
#[test]
fn date_corpus_has_no_wrong_dates() {
    let text = include_str!("../../../eval/dates.jsonl");
    let (mut right, mut wrong, mut missed, mut lines) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let now: jiff::civil::DateTime = value["now"].as_str().unwrap().parse().unwrap();
        let expected = value["date"].as_str().map(date);
        let got = match read_date(value["text"].as_str().unwrap(), now.date(), true) {
            DateRead::One(d) => Some(d),
            _ => None,
        };
        lines += 1;
        match (expected, got) {
            (Some(e), Some(g)) if e == g => right += 1,
            (None, None) => right += 1,
            (Some(_), None) => {
                missed += 1;
                failures.push(format!("missed {line}"));
            }
            _ => {
                wrong += 1;
                failures.push(format!("WRONG {got:?} {line}"));
            }
        }
    }
    eprintln!("dates: {lines} lines, {right} right, {wrong} wrong, {missed} missed");
    assert_eq!(wrong, 0, "{failures:#?}");
    assert!(right * 100 >= lines * 95, "{failures:#?}");
}

#[test]
fn counts_beyond_any_calendar_read_as_no_date() {
    // Found by the property test: a huge count used to panic inside jiff.
    for text in [
        "in 9223372036854775807 weeks",
        "in 9223372036854775807 days",
        "9223372036854775807 weeks from today",
        "in 2000000000 days",
    ] {
        let read = read_date(text, Date::MIN, false);
        assert!(!matches!(read, DateRead::One(_)), "{text}: {read:?}");
    }
    assert_eq!(counts("9223372036854775807 dozen")[0].0, i64::MAX);
}
