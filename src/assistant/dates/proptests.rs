//! Property tests over the date and count readers, which read every
//! customer message: any text on any day jiff can hold must give an answer
//! (`Unsure` at worst), never a panic, with spans inside the text.

use super::*;
use crate::proptest_support::{config, hostile_text};
use proptest::prelude::*;

/// Dated words and numbers around the edges: year ends, leap days, huge counts.
fn message() -> BoxedStrategy<String> {
    let words = proptest::sample::select(
        &[
            "next",
            "friday",
            "saturday",
            "the",
            "14th",
            "31st",
            "29/2",
            "31/12",
            "12/31",
            "14/3",
            "a week from sunday",
            "tomorrow",
            "today",
            "in",
            "weeks",
            "dozen",
            "two",
            "half a",
            "twenty",
            "99999999999999999999",
            "9223372036854775807",
            "-5",
            "20-25",
            "0",
            "march",
            "february 30",
            "1/1/10000",
            "day after tomorrow",
            "of",
            "😀",
            "é",
        ][..],
    );
    prop_oneof![
        2 => hostile_text(),
        3 => proptest::collection::vec(words, 0..12).prop_map(|w| w.join(" ")),
    ]
    .boxed()
}

fn any_day() -> impl Strategy<Value = Date> {
    prop_oneof![
        (-9999i16..=9999, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap()),
        Just(Date::MAX),
        Just(Date::MIN),
        Just(Date::new(2024, 2, 29).unwrap()),
    ]
}

fn assert_span(text: &str, start: usize, end: usize) {
    assert!(
        start <= end && end <= text.len(),
        "{start}..{end} of {}",
        text.len()
    );
    assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn proptest_dates_and_counts_never_panic(text in message(), today in any_day(), month_first in any::<bool>()) {
        let (read, spans) = read_date_with_spans(&text, today, month_first);
        for (start, end) in spans {
            assert_span(&text, start, end);
        }
        if let DateRead::One(date) = read {
            let _ = format_date(date, today);
        }
        for (_, start, end) in counts(&text) {
            assert_span(&text, start, end);
        }
        let _ = counts_with_unit(&text, &["cupcakes".to_string(), "é".to_string()]);
        let _ = crate::text::largest_item_count(&text);
        let _ = crate::text::expand_shorthand(&text);
        for sentence in crate::text::sentences(&text) {
            prop_assert!(sentence.len() <= text.len());
        }
    }
}

/// The regression: `counts_with_unit` sliced the lower-cased text at the
/// original's offsets, and 'Ⱥ' grows by a byte when lower-cased.
#[test]
fn a_count_after_a_letter_that_grows_when_lower_cased_reads_without_panic() {
    let units = ["people".to_string()];
    assert_eq!(counts_with_unit("ȺȺȺ 20 people", &units), vec![20]);
    assert_eq!(counts_with_unit("Ⱥ🀰0{", &units), Vec::<i64>::new());
}
