//! Shared pieces of the property tests over what strangers can send (issue
//! 12, "hostile input"): the case count, hostile strings and JSON values, and
//! a generator that takes a real payload and mutates it (fields dropped,
//! arrays repeated, leaves swapped for hostile values, raw tokens serde_json
//! cannot hold: numbers past u64, lone surrogates, deep nesting).
//!
//! The count: each test names a modest default so CI stays fast; setting
//! `PROPTEST_CASES` runs every test that many times instead, e.g.
//! `PROPTEST_CASES=100000 cargo test --release --lib proptest`.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

/// `default_cases` cases, unless `PROPTEST_CASES` says otherwise.
pub fn config(default_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    // Shrunk failures are printed; regressions become named unit tests.
    config.failure_persistence = None;
    config
}

/// Strings chosen to break parsers: empty, blank, control characters, bidi
/// overrides, astral characters, surrogate-looking escapes, numbers past
/// every integer type, long runs.
const NASTY: &[&str] = &[
    "",
    " ",
    "\t\r\n",
    "\0",
    "\u{7f}\u{1b}[2J",
    "\u{202e}evil\u{202c}",
    "\u{feff}",
    "é",
    "e\u{301}",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "👍🏽",
    "\\ud800",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551616",
    "99999999999999999999999999",
    "-1",
    "1e309",
    "NaN",
    "0x1F",
    "+1",
    " 1749416383 ",
    "sha256=",
    "<>",
    "<<<<>>>>",
    "\"\"",
    "[attachment]",
    "[attachment:../../etc/passwd]",
    "%00%ff%",
    "a=b&c",
    "=",
    "&&&",
    "@",
    "\"Ann\" <>",
    "<a@b>",
];

/// Any string, a known-nasty one, or a long run of one.
pub fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<String>(),
        3 => proptest::sample::select(NASTY).prop_map(str::to_string),
        1 => (proptest::sample::select(NASTY), 1usize..400)
            .prop_map(|(s, n)| s.repeat(n)),
        1 => "[0-9]{1,40}",
        1 => "[ -~]{0,80}",
    ]
    .boxed()
}

/// A JSON value of any shape, a few levels deep, with hostile leaves.
pub fn hostile_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN/inf become null
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(hostile_text(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
    .boxed()
}

/// JSON text serde_json's `Value` cannot hold, spliced in where a leaf was.
const RAW_TOKENS: &[&str] = &[
    "1e999",
    "-1e999",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1.7976931348623157e308",
    "-0",
    "0.00000000000000000000000000001",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"\\uZZZZ\"",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}",
    "01",
    "tru",
    "\"unterminated",
    "{}",
    "[]",
];

/// A placeholder string that [`json_text`] swaps for a raw token.
fn raw_placeholder(index: usize) -> Value {
    Value::String(format!("\u{1}RAW{index}\u{1}"))
}

/// `template` with its structure kept mostly and its contents attacked:
/// each object field may be dropped, each array repeated, each value swapped
/// for a hostile one or a raw token, and objects may gain unknown fields.
pub fn mutated(template: &Value) -> BoxedStrategy<Value> {
    let kept: BoxedStrategy<Value> = match template {
        Value::Object(map) => {
            let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = map
                .iter()
                .map(|(key, value)| {
                    let key = key.clone();
                    prop_oneof![
                        8 => mutated(value).prop_map(move |value| Some((key.clone(), value))),
                        1 => Just(None),
                    ]
                    .boxed()
                })
                .collect();
            let extra = proptest::option::weighted(0.1, (hostile_text(), hostile_value()));
            (fields, extra)
                .prop_map(|(fields, extra)| {
                    let mut object: serde_json::Map<String, Value> =
                        fields.into_iter().flatten().collect();
                    if let Some((key, value)) = extra {
                        object.insert(key, value);
                    }
                    Value::Object(object)
                })
                .boxed()
        }
        Value::Array(items) => {
            let items: Vec<BoxedStrategy<Value>> = items.iter().map(mutated).collect();
            (
                items,
                prop_oneof![6 => Just(1usize), 1 => Just(0), 1 => 2usize..5],
            )
                .prop_map(|(items, times)| {
                    let len = items.len() * times;
                    Value::Array(items.into_iter().cycle().take(len).collect())
                })
                .boxed()
        }
        leaf => Just(leaf.clone()).boxed(),
    };
    prop_oneof![
        12 => kept,
        1 => hostile_value(),
        1 => (0..RAW_TOKENS.len()).prop_map(raw_placeholder),
    ]
    .boxed()
}

/// A mutated `template` as the bytes of a request body.
pub fn json_text(template: &Value) -> BoxedStrategy<Vec<u8>> {
    mutated(template)
        .prop_map(|value| {
            let mut text = value.to_string();
            for (index, token) in RAW_TOKENS.iter().enumerate() {
                text = text.replace(&format!("\"\\u0001RAW{index}\\u0001\""), token);
            }
            text.into_bytes()
        })
        .boxed()
}

/// `depth` nested arrays: serde_json must refuse it, not overflow the stack.
pub fn deep_nesting(depth: usize) -> Vec<u8> {
    let mut text = "[".repeat(depth);
    text.push_str(&"]".repeat(depth));
    text.into_bytes()
}

/// A text attacked line by line: lines dropped, repeated or replaced, and
/// hostile text spliced in at a character boundary.
pub fn mutated_lines(text: &str) -> BoxedStrategy<String> {
    let lines: Vec<BoxedStrategy<String>> = text
        .lines()
        .map(|line| {
            let line = line.to_string();
            let at_boundary = line.clone();
            prop_oneof![
                10 => Just(line.clone()),
                1 => Just(String::new()),
                1 => Just(format!("{line}\n{line}")),
                1 => hostile_text(),
                2 => (hostile_text(), any::<prop::sample::Index>()).prop_map(move |(splice, at)| {
                    let cuts: Vec<usize> = at_boundary
                        .char_indices()
                        .map(|(i, _)| i)
                        .chain([at_boundary.len()])
                        .collect();
                    let cut = cuts[at.index(cuts.len())];
                    format!("{}{splice}{}", &at_boundary[..cut], &at_boundary[cut..])
                }),
            ]
            .boxed()
        })
        .collect();
    lines.prop_map(|lines| lines.join("\n")).boxed()
}
