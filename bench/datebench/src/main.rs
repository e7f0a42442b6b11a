// Measures Rust date-parsing crates (duckling, interim) on eval/dates.jsonl; see eval/README.md.
// Run: cargo run --release --manifest-path bench/datebench/Cargo.toml -- eval/dates.jsonl
// Scratch harness: how do interim and duckling do on eval/dates.jsonl?
use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use duckling::{
    parse, Context, DimensionKind, DimensionValue, Lang, Locale, Options, TimePoint, TimeValue,
};

#[derive(Default, Debug)]
struct Tally {
    right: usize,
    wrong: usize,
    missed: usize,
    null_ok: usize,
    null_wrong: usize,
}
impl Tally {
    fn add(&mut self, expected: Option<&str>, got: Option<String>) -> &'static str {
        match (expected, got.as_deref()) {
            (Some(e), Some(g)) if e == g => {
                self.right += 1;
                "ok"
            }
            (Some(_), Some(_)) => {
                self.wrong += 1;
                "WRONG"
            }
            (Some(_), None) => {
                self.missed += 1;
                "missed"
            }
            (None, None) => {
                self.null_ok += 1;
                "ok"
            }
            (None, Some(_)) => {
                self.null_wrong += 1;
                "WRONG(null)"
            }
        }
    }
}

fn duck(text: &str, now: &str) -> Option<String> {
    duck_grain(text, now, false)
}
fn duck_day(text: &str, now: &str) -> Option<String> {
    duck_grain(text, now, true)
}
fn duck_grain(text: &str, now: &str, day_only: bool) -> Option<String> {
    let naive = NaiveDateTime::parse_from_str(now, "%Y-%m-%dT%H:%M:%S").ok()?;
    // America/New_York in March after the 8th is -4h; close enough for a date test.
    let offset = FixedOffset::west_opt(4 * 3600).unwrap();
    let reference = offset.from_local_datetime(&naive).single()?;
    let locale = Locale::new(Lang::EN, None);
    let context = Context::new(reference, locale);
    let found = parse(
        text,
        &locale,
        &[DimensionKind::Time],
        &context,
        &Options::default(),
    );
    for entity in found {
        if let DimensionValue::Time(TimeValue::Single { value, .. }) = entity.value {
            let grain = match &value {
                TimePoint::Naive { grain, .. } | TimePoint::Instant { grain, .. } => {
                    format!("{grain:?}")
                }
            };
            if day_only && grain != "Day" {
                return None;
            }
            return Some(match value {
                TimePoint::Naive { value, .. } => value.date().to_string(),
                TimePoint::Instant { value, .. } => value.date_naive().to_string(),
            });
        }
        return None;
    }
    None
}

fn interim_date(text: &str, now: &str) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    let civil: jiff::civil::DateTime = now.parse().ok()?;
    let zoned = civil.in_tz("America/New_York").ok()?;
    let text = text.to_string();
    std::panic::catch_unwind(move || {
        interim::parse_date_string(&text, zoned, interim::Dialect::Us)
            .ok()
            .map(|z| z.date().to_string())
    })
    .unwrap_or(None)
}

fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let (mut d_text, mut i_text, mut i_phrase, mut d_phrase) = (
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
    );
    let mut n = 0;
    let started = std::time::Instant::now();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (t, now, phrase) = (
            v["text"].as_str().unwrap(),
            v["now"].as_str().unwrap(),
            v["phrase"].as_str().unwrap(),
        );
        let expected = v["date"].as_str();
        n += 1;
        let a = duck(t, now);
        let sa = d_text.add(expected, a.clone());
        let b = interim_date(t, now);
        let sb = i_text.add(expected, b.clone());
        let c = interim_date(phrase, now);
        let sc = i_phrase.add(expected, c.clone());
        let d = duck_day(t, now);
        d_phrase.add(expected, d.clone());
        println!("{} {:?} want {:?} | duckling {:?} {sa} | interim(text) {:?} {sb} | interim(phrase) {:?} {sc}", v["id"], t, expected, a, b, c);
    }
    println!("lines {n}; elapsed {:?}", started.elapsed());
    println!("duckling on the message: {:?}", d_text);
    println!("duckling, day grain only: {:?}", d_phrase);
    println!("interim on the message:  {:?}", i_text);
    println!("interim on the phrase:   {:?}", i_phrase);
}
