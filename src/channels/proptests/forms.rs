//! Property tests over the form posts: Twilio's (parsed before its signature
//! can be checked, so anyone can reach it) and Mailgun's fields, signature
//! and file parts.

use super::super::{email, twilio, ChannelError, Inbound};
use super::assert_bounded;
use crate::proptest_support::{config, hostile_text, hostile_value};
use proptest::prelude::*;

const TWILIO_FIELDS: &[&str] = &[
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "AccountSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaContentType0",
    "MediaUrl0",
    "MediaContentType1",
    "MediaUrl1",
    "MediaContentType9",
    "MediaUrl9",
    "MediaUrl10",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "ErrorMessage",
    "NumSegments",
    "ApiVersion",
];

const TWILIO_VALUES: &[&str] = &[
    "SM2f1d9c1e0a1b4c7d8e9f0a1b2c3d4e5f",
    "+14155550123",
    "+15005550006",
    "received",
    "receiving",
    "delivered",
    "undelivered",
    "failed",
    "sent",
    "read",
    "63016",
    "30003",
    "0",
    "image/jpeg",
    "image/",
    "video/mp4",
    "audio/ogg",
    "/",
    "https://api.twilio.com/x/Media/ME1",
    "10",
    "11",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999",
    "-1",
];

/// A form with Twilio's field names (and others) and hostile values.
fn twilio_form() -> BoxedStrategy<Vec<(String, String)>> {
    let name = prop_oneof![
        6 => proptest::sample::select(TWILIO_FIELDS).prop_map(str::to_string),
        1 => hostile_text(),
    ];
    let value = prop_oneof![
        3 => proptest::sample::select(TWILIO_VALUES).prop_map(str::to_string),
        2 => hostile_text(),
    ];
    proptest::collection::vec((name, value), 0..24).boxed()
}

fn twilio_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => "[a-zA-Z0-9%&=+]{0,200}".prop_map(String::into_bytes),
        4 => twilio_form().prop_map(|form| serde_urlencoded::to_string(form).unwrap().into_bytes()),
    ]
    .boxed()
}

const MAILGUN_FIELDS: &[&str] = &[
    "from",
    "From",
    "sender",
    "recipient",
    "subject",
    "Subject",
    "body-plain",
    "stripped-text",
    "attachment-count",
    "Message-Id",
    "Message-ID",
    "In-Reply-To",
    "References",
    "message-headers",
    "timestamp",
    "token",
    "signature",
    "Date",
];

const MAILGUN_VALUES: &[&str] = &[
    "\"Ann Lee\" <Ann.Lee@Example.com>",
    "ann@example.com",
    "<a@b> <c@d>",
    "<<>>",
    ">",
    "<",
    "hello@rosas.example, other@rosas.example",
    "Re: cake",
    "1749416383",
    "-9223372036854775808",
    "18446744073709551615",
    "[[\"Message-ID\", \"<c@example.com>\"]]",
    "[[1,2]]",
    "[",
    "100000000",
];

fn mailgun_fields() -> BoxedStrategy<Vec<(String, String)>> {
    let name = prop_oneof![
        6 => proptest::sample::select(MAILGUN_FIELDS).prop_map(str::to_string),
        1 => hostile_text(),
    ];
    let value = prop_oneof![
        3 => proptest::sample::select(MAILGUN_VALUES).prop_map(str::to_string),
        2 => hostile_text(),
        1 => hostile_value().prop_map(|v| v.to_string()),
    ];
    proptest::collection::vec((name, value), 0..24).boxed()
}

fn file_parts() -> BoxedStrategy<Vec<email::FilePart>> {
    let field = prop_oneof![
        3 => (0u32..6).prop_map(|n| format!("attachment-{n}")),
        1 => hostile_text(),
        1 => Just("attachment-4294967296".to_string()),
    ];
    let content_type = proptest::option::of(prop_oneof![
        Just("image/jpeg".to_string()),
        Just(" IMAGE/png ".to_string()),
        Just("application/pdf".to_string()),
        hostile_text(),
    ]);
    let part = (
        field,
        content_type,
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(field, content_type, bytes)| email::FilePart {
            field,
            content_type,
            bytes,
        });
    proptest::collection::vec(part, 0..8).boxed()
}

fn form_bytes(fields: &[(String, String)]) -> usize {
    fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum()
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn proptest_twilio_form_never_panics_and_stays_bounded(body in twilio_body(), at in any::<i64>()) {
        if let Ok((params, inbound)) = twilio::parse_form(&body, at) {
            prop_assert!(params.len() <= body.len() + 1);
            assert_bounded(&body, std::slice::from_ref(&inbound));
            if let Inbound::Message(message) = &inbound {
                prop_assert!(message.attachments.len() <= twilio::MAX_MEDIA);
                prop_assert!(message.text.matches('[').count() <= twilio::MAX_MEDIA + body.len());
            }
        }
    }

    #[test]
    fn proptest_mailgun_fields_never_panic_and_stay_bounded(
        fields in mailgun_fields(), parts in file_parts(),
    ) {
        let input = form_bytes(&fields) + parts.iter().map(|p| p.bytes.len() + 64).sum::<usize>();
        if let Ok(mut message) = email::parse_form(&fields) {
            let part_count = parts.len();
            email::attach_parts(&mut message, parts);
            prop_assert!(message.attachments.len() <= part_count);
            if !message.attachments.is_empty() {
                prop_assert!(message.text.contains("[attachment]"));
            }
            let markers = message.text.matches("[attachment]").count();
            prop_assert!(markers <= email::MAX_ATTACHMENT_MARKERS + form_bytes(&fields));
            let produced = super::inbound_bytes(&[Inbound::Message(message)]);
            prop_assert!(produced <= 4 * input + 4096, "{} from {}", produced, input);
        }
        prop_assert_eq!(email::verify_form(b"mailgun-signing-key", &fields, 1_749_416_400)
            .is_ok(), false);
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A genuine signature passes exactly when its timestamp is a number
    /// within the window of now (worked out in i128, so no overflow hides).
    #[test]
    fn proptest_mailgun_age_check_is_exact_for_any_timestamp(
        timestamp in prop_oneof![
            any::<i64>().prop_map(|t| t.to_string()),
            (-2_000i64..2_000).prop_map(|d| (1_749_416_400 + d).to_string()),
            hostile_text(),
        ],
        now in prop_oneof![any::<i64>(), Just(1_749_416_400i64), Just(i64::MAX), Just(i64::MIN)],
        token in hostile_text(),
    ) {
        let key = b"mailgun-signing-key";
        let signature = super::flood::mailgun_digest(key, &timestamp, &token);
        let verdict = email::verify_signature(key, &timestamp, &token, &signature, now);
        let expected = match timestamp.trim().parse::<i64>() {
            Err(_) => Err(ChannelError::BadSignature),
            Ok(signed) if (i128::from(now) - i128::from(signed)).abs()
                <= i128::from(email::MAX_SIGNATURE_AGE_SECS) => Ok(()),
            Ok(_) => Err(ChannelError::StaleTimestamp),
        };
        prop_assert_eq!(verdict, expected);
    }

    #[test]
    fn proptest_twilio_signature_accepts_only_the_real_one(
        form in twilio_form(),
        url in prop_oneof![
            Just("https://shop.example/webhooks/twilio".to_string()),
            Just("https://shop.example:443/webhooks/twilio".to_string()),
            Just("http://[::1]:80/webhooks/twilio?x=1".to_string()),
            Just("https://user:pw@shop.example:8443/x".to_string()),
            hostile_text(),
        ],
        header in hostile_text(),
    ) {
        let token = "test-twilio-token";
        prop_assert_eq!(
            twilio::verify_signature(token, Some(&header), &url, &form),
            Err(ChannelError::BadSignature)
        );
        let good = twilio::signature(token, &url, &form);
        prop_assert_eq!(twilio::verify_signature(token, Some(&good), &url, &form), Ok(()));
        prop_assert_eq!(
            twilio::verify_signature("another-token", Some(&good), &url, &form),
            Err(ChannelError::BadSignature)
        );
    }
}

/// The regression: `NumMedia=10000000000000` (read before the signature is
/// checked) looped that many times, making a marker each time.
#[test]
fn a_huge_num_media_makes_at_most_ten_markers() {
    for count in ["10000000000000", "18446744073709551615", "11"] {
        let body = format!("MessageSid=SM1&From=%2B1&To=%2B2&Body=hi&NumMedia={count}");
        let (_, inbound) = twilio::parse_form(body.as_bytes(), 0).unwrap();
        let Inbound::Message(message) = inbound else {
            panic!("a message")
        };
        assert_eq!(
            message.text.matches("[attachment]").count(),
            twilio::MAX_MEDIA
        );
    }
}

/// The regression: `attachment-count` became that many markers.
#[test]
fn a_huge_attachment_count_makes_a_bounded_text() {
    let fields: Vec<(String, String)> = [
        ("from", "bob@example.com"),
        ("recipient", "hello@rosas.example"),
        ("timestamp", "1749416383"),
        ("attachment-count", "18446744073709551615"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let message = email::parse_form(&fields).unwrap();
    assert_eq!(
        message.text.matches("[attachment]").count(),
        email::MAX_ATTACHMENT_MARKERS
    );
}

/// The regression: a signed `timestamp` of i64::MIN overflowed the age
/// check (a panic in debug builds, a wrong answer in release).
#[test]
fn an_extreme_signed_timestamp_is_stale_not_an_overflow() {
    let key = b"mailgun-signing-key";
    for timestamp in [i64::MIN.to_string(), i64::MAX.to_string()] {
        let signature = super::flood::mailgun_digest(key, &timestamp, "token");
        for now in [0, 1_749_416_400, i64::MAX, i64::MIN] {
            assert_eq!(
                email::verify_signature(key, &timestamp, "token", &signature, now),
                if now.to_string() == timestamp {
                    Ok(())
                } else {
                    Err(ChannelError::StaleTimestamp)
                },
            );
        }
    }
}
