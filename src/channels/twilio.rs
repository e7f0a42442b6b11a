//! SMS through Twilio: signature checks, inbound and status-callback forms, and
//! sending.
//!
//! Twilio POSTs `application/x-www-form-urlencoded` bodies and signs them with
//! `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed by the account's auth token,
//! over the full URL Twilio called (scheme, host, port if any, path and query
//! string, exactly as configured in the Twilio console) followed by every POST
//! parameter as `name` + `value`, sorted by name. The URL is the one the
//! provider used, not the one this server sees behind a proxy: build it from
//! `FRONTDESK_PUBLIC_URL`.
//!
//! Inbound messages carry no timestamp, so [`parse_form`] takes the time the
//! webhook arrived.
//!
//! Error 63016 (free-form text outside WhatsApp's 24-hour window, when the
//! Twilio number is a WhatsApp sender) is reported as [`WINDOW_CLOSED`], in the
//! send's answer (not retried) and in a `failed`/`undelivered` status callback.

use super::{constant_time_eq, excerpt, retryable_status, send_for_json, ChannelError};
use super::{AttachmentSource, DeliveryState, Inbound, InboundAttachment, InboundMessage};
use super::{OutboundMessage, SendError, StatusUpdate};
use crate::domain::Channel;
use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

/// The webhook signature header (give its value to [`verify_signature`]).
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The real Twilio REST API, for `FRONTDESK_TWILIO_BASE_URL`'s default.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// Twilio's error for a free-form WhatsApp message outside the 24-hour window.
pub const OUTSIDE_WINDOW_CODE: i64 = 63016;

/// The most media one Twilio message carries (`MediaUrl0` … `MediaUrl9`).
pub const MAX_MEDIA: usize = 10;

/// What the owner reads when Twilio refuses a message with [`OUTSIDE_WINDOW_CODE`].
pub const WINDOW_CLOSED: &str = "Twilio refused it: more than 24 hours since the customer's last WhatsApp message (63016). Send an approved template instead.";

/// The expected `X-Twilio-Signature` for a form POST to `url`: base64 of
/// HMAC-SHA1(auth token, url + name1 + value1 + name2 + value2 …), parameters
/// sorted by name (and by value for repeated names).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(signature_bytes(auth_token, url, params))
}

fn signature_bytes(auth_token: &str, url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// Checks `X-Twilio-Signature` for a form POST to `url` with `params` (the
/// decoded form fields, as [`parse_form`] returns them). Twilio signs the URL as
/// configured, which may or may not spell out the default port (`:443`), so the
/// check also accepts the same URL with the default port added or removed.
pub fn verify_signature(
    auth_token: &str,
    header: Option<&str>,
    url: &str,
    params: &[(String, String)],
) -> Result<(), ChannelError> {
    let claimed = header
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .and_then(|value| BASE64.decode(value).ok())
        .ok_or(ChannelError::BadSignature)?;
    let matches = |candidate: &str| {
        constant_time_eq(&signature_bytes(auth_token, candidate, params), &claimed)
    };
    if matches(url) || with_default_port_toggled(url).is_some_and(|other| matches(&other)) {
        Ok(())
    } else {
        Err(ChannelError::BadSignature)
    }
}

/// `https://a.example/x` ⇄ `https://a.example:443/x` (and `:80` for http).
/// `None` when the URL names another port or is not http(s).
fn with_default_port_toggled(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The port's colon comes after any user info and after an IPv6 literal.
    let host_start = [authority.rfind('@'), authority.rfind(']')]
        .into_iter()
        .flatten()
        .max()
        .map_or(0, |index| index + 1);
    match authority[host_start..].rfind(':') {
        Some(colon) => {
            let colon = host_start + colon;
            (authority[colon + 1..] == *default_port)
                .then(|| format!("{scheme}://{}{tail}", &authority[..colon]))
        }
        None => Some(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
}

/// Decodes a Twilio webhook form into its fields (for [`verify_signature`]) and
/// what it means: an inbound SMS/MMS, or a status callback for one we sent
/// (those carry `MessageStatus`). `received_at_ms` becomes the message's
/// timestamp, since Twilio sends none. Pictures and other media (`NumMedia`,
/// `MediaContentType0` …) become `[image]`-style markers after the text.
pub fn parse_form(
    body: &[u8],
    received_at_ms: i64,
) -> Result<(Vec<(String, String)>, Inbound), ChannelError> {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|err| ChannelError::Malformed(format!("invalid form body: {err}")))?;
    let inbound = interpret(&params, received_at_ms)?;
    Ok((params, inbound))
}

fn interpret(params: &[(String, String)], received_at_ms: i64) -> Result<Inbound, ChannelError> {
    let field = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let required = |name: &str| {
        field(name)
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| ChannelError::Malformed(format!("missing field `{name}`")))
    };
    // Older callbacks name the id SmsSid; MessageSid is the current name.
    let message_sid = field("MessageSid")
        .or_else(|| field("SmsSid"))
        .filter(|sid| !sid.is_empty())
        .ok_or_else(|| ChannelError::Malformed("missing field `MessageSid`".to_string()))?
        .to_string();

    // Inbound messages carry SmsStatus=received (and sometimes MessageStatus
    // =received); anything else with a status is a callback about our sends.
    let status = field("MessageStatus").or_else(|| field("SmsStatus"));
    if let Some(status) = status.filter(|status| !matches!(*status, "received" | "receiving")) {
        let state = match status {
            "accepted" | "scheduled" | "queued" | "sending" | "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "read" => DeliveryState::Read,
            "undelivered" | "failed" | "canceled" => DeliveryState::Failed,
            other => {
                return Err(ChannelError::Malformed(format!(
                    "unknown MessageStatus `{other}`"
                )))
            }
        };
        let error = field("ErrorCode")
            .filter(|code| !code.is_empty() && *code != "0")
            .map(|code| {
                if code.trim().parse() == Ok(OUTSIDE_WINDOW_CODE) {
                    return WINDOW_CLOSED.to_string();
                }
                let detail = field("ErrorMessage").filter(|m| !m.is_empty());
                let detail = detail.map(|m| format!(": {m}")).unwrap_or_default();
                format!(
                    "Twilio error {code}{detail} (https://www.twilio.com/docs/api/errors/{code})"
                )
            });
        return Ok(Inbound::Status(StatusUpdate {
            channel: Channel::Sms,
            outbox_id: None,
            provider_message_id: message_sid,
            state,
            error,
        }));
    }

    let sender = required("From")?.to_string();
    let business_account = required("To")?.to_string();
    let mut parts: Vec<String> = field("Body")
        .filter(|text| !text.trim().is_empty())
        .map(str::to_string)
        .into_iter()
        .collect();
    // Read before the signature is checked: a forged `NumMedia` must not
    // make a loop (or a text) as long as the number it names.
    let media_count: usize = field("NumMedia")
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
        .min(MAX_MEDIA);
    let mut attachments = Vec::new();
    for index in 0..media_count {
        let content_type = field(&format!("MediaContentType{index}")).unwrap_or("");
        let kind = match content_type.split('/').next().unwrap_or("") {
            "image" => "image",
            "video" => "video",
            "audio" => "audio",
            _ => "attachment",
        };
        let url = field(&format!("MediaUrl{index}")).filter(|url| !url.trim().is_empty());
        if let (true, Some(url)) = (kind == "image", url) {
            attachments.push(InboundAttachment {
                marker: "[image]".into(),
                content_type: Some(content_type.to_string()),
                source: AttachmentSource::TwilioUrl {
                    url: url.trim().to_string(),
                },
            });
        }
        parts.push(format!("[{kind}]"));
    }
    let text = if parts.is_empty() {
        "[empty message]".to_string()
    } else {
        parts.join(" ")
    };
    Ok(Inbound::Message(InboundMessage {
        channel: Channel::Sms,
        provider_message_id: message_sid,
        sender,
        business_account,
        sender_name: None,
        text,
        timestamp_ms: received_at_ms,
        is_echo: false,
        thread_ref: None,
        subject: None,
        attachments,
    }))
}

/// The answer to an inbound webhook: TwiML that makes Twilio send nothing
/// itself (our reply goes out through the API, after the pipeline decides).
/// Serve it with `Content-Type: text/xml`.
pub fn empty_twiml() -> &'static str {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
}

/// The URL and form fields of a send (`Messages.json`, HTTP basic auth with the
/// account SID and auth token, see [`send`]).
pub fn send_request(
    base_url: &str,
    account_sid: &str,
    from: &str,
    msg: &OutboundMessage,
) -> (String, Vec<(String, String)>) {
    let url = format!(
        "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
        base_url.trim_end_matches('/')
    );
    let form = vec![
        ("To".to_string(), msg.to.clone()),
        ("From".to_string(), from.to_string()),
        ("Body".to_string(), msg.text.clone()),
    ];
    (url, form)
}

#[derive(Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

/// Sends an SMS from `from` (a Twilio number in E.164, normally the
/// `business_account` the customer wrote to) and returns its `sid`, which status
/// callbacks refer to. Twilio has no idempotency key for messages: a retry after
/// a timeout may send the text twice.
pub async fn send(
    client: &reqwest::Client,
    base_url: &str,
    account_sid: &str,
    auth_token: &str,
    from: &str,
    msg: &OutboundMessage,
) -> Result<String, SendError> {
    let (url, form) = send_request(base_url, account_sid, from, msg);
    let request = client
        .post(url)
        .basic_auth(account_sid, Some(auth_token))
        .form(&form);
    let answer = send_for_json("twilio", request, |status, body| {
        let parsed = serde_json::from_str::<TwilioError>(body);
        if matches!(
            &parsed,
            Ok(TwilioError {
                code: Some(OUTSIDE_WINDOW_CODE),
                ..
            })
        ) {
            return SendError::permanent(WINDOW_CLOSED);
        }
        let message = match parsed {
            Ok(TwilioError { code, message }) if code.is_some() || message.is_some() => format!(
                "twilio: HTTP {status}, error {}: {}",
                code.unwrap_or(0),
                message.as_deref().unwrap_or("(no message)")
            ),
            _ => format!("twilio: HTTP {status}: {}", excerpt(body)),
        };
        SendError::new(retryable_status(status), message)
    })
    .await?;
    answer["sid"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| SendError::accepted_without_id("twilio", &answer.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{fake_provider, test_client};
    use std::time::Duration;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// A real inbound SMS webhook's fields (values changed).
    const INBOUND: &str = "ToCountry=US&ToState=CA&SmsMessageSid=SM2f1d9c1e0a1b4c7d8e9f0a1b2c3d4e5f&NumMedia=0\
        &ToCity=&FromZip=94105&SmsSid=SM2f1d9c1e0a1b4c7d8e9f0a1b2c3d4e5f&FromState=CA&SmsStatus=received\
        &FromCity=SAN+FRANCISCO&Body=Are+you+open+on+Sunday%3F&FromCountry=US&To=%2B15005550006\
        &ToZip=&NumSegments=1&MessageSid=SM2f1d9c1e0a1b4c7d8e9f0a1b2c3d4e5f\
        &AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B14155550123&ApiVersion=2010-04-01";

    #[test]
    fn signature_matches_twilios_documented_example() {
        // The example from Twilio's security docs; the constant was computed
        // independently with python3's hmac/hashlib/base64.
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert_eq!(
            verify_signature("12345", Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="), url, &params),
            Ok(())
        );
    }

    #[test]
    fn signature_of_a_parsed_inbound_form_verifies() {
        // Computed independently: python3, urllib.parse.parse_qsl(INBOUND,
        // keep_blank_values=True), then base64(hmac.new(b'test-auth-token',
        // url + ''.join(k + v for k, v in sorted(pairs)), sha1)). Empty fields
        // (ToCity, ToZip) are signed too.
        const EXPECTED: &str = "OphgJdamE9vPu/G9Xle29oeEHuI=";
        let (params, _) = parse_form(INBOUND.as_bytes(), 0).unwrap();
        let url = "https://shop.example/webhooks/twilio";
        assert_eq!(signature("test-auth-token", url, &params), EXPECTED);
        assert_eq!(
            verify_signature("test-auth-token", Some(EXPECTED), url, &params),
            Ok(())
        );
    }

    #[test]
    fn bad_signatures_are_refused() {
        let params = pairs(&[("Body", "hello"), ("From", "+14155550123")]);
        let url = "https://shop.example/webhooks/twilio";
        let good = signature("token", url, &params);
        assert_eq!(verify_signature("token", Some(&good), url, &params), Ok(()));

        let tampered = pairs(&[("Body", "hellp"), ("From", "+14155550123")]);
        let other_url = "https://shop.example/webhooks/twilio2";
        for (header, url, params) in [
            (Some(good.as_str()), url, &tampered),
            (Some(good.as_str()), other_url, &params),
            (None, url, &params),
            (Some(""), url, &params),
            (Some("not base64!"), url, &params),
            (Some("AAAA"), url, &params),
        ] {
            assert_eq!(
                verify_signature("token", header, url, params),
                Err(ChannelError::BadSignature),
                "{header:?} {url}"
            );
        }
        assert_eq!(
            verify_signature("other-token", Some(&good), url, &params),
            Err(ChannelError::BadSignature)
        );
    }

    #[test]
    fn signature_accepts_the_url_with_or_without_the_default_port() {
        let params = pairs(&[("Body", "hi")]);
        let signed_with_port =
            signature("token", "https://shop.example:443/webhooks/twilio", &params);
        assert_eq!(
            verify_signature(
                "token",
                Some(&signed_with_port),
                "https://shop.example/webhooks/twilio",
                &params
            ),
            Ok(())
        );
        let signed_without = signature("token", "https://shop.example/webhooks/twilio", &params);
        assert_eq!(
            verify_signature(
                "token",
                Some(&signed_without),
                "https://shop.example:443/webhooks/twilio",
                &params
            ),
            Ok(())
        );
        let signed_other_port = signature(
            "token",
            "https://shop.example:8443/webhooks/twilio",
            &params,
        );
        assert_eq!(
            verify_signature(
                "token",
                Some(&signed_other_port),
                "https://shop.example/webhooks/twilio",
                &params
            ),
            Err(ChannelError::BadSignature)
        );
    }

    #[test]
    fn default_port_toggling_handles_queries_user_info_and_ipv6() {
        let cases = [
            (
                "https://a.example/x?y=1",
                Some("https://a.example:443/x?y=1"),
            ),
            ("https://a.example:443/x", Some("https://a.example/x")),
            ("http://a.example", Some("http://a.example:80")),
            ("http://[::1]:80/x", Some("http://[::1]/x")),
            (
                "https://user:pw@a.example/x",
                Some("https://user:pw@a.example:443/x"),
            ),
            ("https://a.example:8443/x", None),
            ("ftp://a.example/x", None),
        ];
        for (url, expected) in cases {
            assert_eq!(with_default_port_toggled(url).as_deref(), expected, "{url}");
        }
    }

    #[test]
    fn inbound_sms_becomes_an_inbound_message() {
        let (params, inbound) = parse_form(INBOUND.as_bytes(), 1_749_416_383_000).unwrap();
        assert!(params.contains(&("Body".to_string(), "Are you open on Sunday?".to_string())));
        assert_eq!(
            inbound,
            Inbound::Message(InboundMessage {
                channel: Channel::Sms,
                provider_message_id: "SM2f1d9c1e0a1b4c7d8e9f0a1b2c3d4e5f".into(),
                sender: "+14155550123".into(),
                business_account: "+15005550006".into(),
                sender_name: None,
                text: "Are you open on Sunday?".into(),
                timestamp_ms: 1_749_416_383_000,
                is_echo: false,
                thread_ref: None,
                subject: None,
                attachments: Vec::new(),
            })
        );
    }

    #[test]
    fn mms_media_become_markers() {
        let body = "MessageSid=MM1&From=%2B14155550123&To=%2B15005550006&Body=this+cake%3F&NumMedia=2\
            &MediaContentType0=image%2Fjpeg&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMM1%2FMedia%2FME1\
            &MediaContentType1=video%2Fmp4&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2FME2&SmsStatus=received";
        let (_, inbound) = parse_form(body.as_bytes(), 0).unwrap();
        let Inbound::Message(message) = inbound else {
            panic!("{inbound:?}")
        };
        assert_eq!(message.text, "this cake? [image] [video]");

        let picture_only =
            "MessageSid=MM2&From=%2B1415&To=%2B1500&Body=&NumMedia=1&MediaContentType0=image%2Fpng";
        let (_, inbound) = parse_form(picture_only.as_bytes(), 0).unwrap();
        let Inbound::Message(message) = inbound else {
            panic!("{inbound:?}")
        };
        assert_eq!(message.text, "[image]");
    }

    #[test]
    fn status_callbacks_map_to_delivery_states() {
        let cases = [
            ("queued", DeliveryState::Sent),
            ("sent", DeliveryState::Sent),
            ("delivered", DeliveryState::Delivered),
            ("read", DeliveryState::Read),
            ("undelivered", DeliveryState::Failed),
            ("failed", DeliveryState::Failed),
        ];
        for (status, expected) in cases {
            let body = format!(
                "SmsSid=SMb7c0a2ce80504485a6f653a7110836f5&SmsStatus={status}&MessageStatus={status}\
                 &To=%2B14155550123&MessageSid=SMb7c0a2ce80504485a6f653a7110836f5\
                 &AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B15005550006&ApiVersion=2010-04-01"
            );
            let (_, inbound) = parse_form(body.as_bytes(), 0).unwrap();
            assert_eq!(
                inbound,
                Inbound::Status(StatusUpdate {
                    channel: Channel::Sms,
                    outbox_id: None,
                    provider_message_id: "SMb7c0a2ce80504485a6f653a7110836f5".into(),
                    state: expected,
                    error: None,
                }),
                "{status}"
            );
        }
    }

    #[test]
    fn failed_status_carries_the_error_code() {
        let body = "ErrorCode=30003&SmsSid=SM1&SmsStatus=undelivered&MessageStatus=undelivered\
            &To=%2B14155550123&MessageSid=SM1&AccountSid=AC1&From=%2B15005550006&ApiVersion=2010-04-01";
        let (_, inbound) = parse_form(body.as_bytes(), 0).unwrap();
        let Inbound::Status(status) = inbound else {
            panic!("{inbound:?}")
        };
        assert_eq!(status.state, DeliveryState::Failed);
        assert!(
            status
                .error
                .as_deref()
                .unwrap()
                .starts_with("Twilio error 30003"),
            "{status:?}"
        );
    }

    #[test]
    fn outside_the_whatsapp_window_is_plain_words_in_status_callbacks() {
        for status in ["failed", "undelivered"] {
            let body = format!(
                "ErrorCode=63016&ErrorMessage=Failed+to+send+freeform+message+because+you+are+outside+the+allowed+window\
                 &SmsSid=SM2&SmsStatus={status}&MessageStatus={status}&To=whatsapp%3A%2B14155550123\
                 &MessageSid=SM2&AccountSid=AC1&From=whatsapp%3A%2B15005550006&ApiVersion=2010-04-01"
            );
            let (_, inbound) = parse_form(body.as_bytes(), 0).unwrap();
            assert_eq!(
                inbound,
                Inbound::Status(StatusUpdate {
                    channel: Channel::Sms,
                    outbox_id: None,
                    provider_message_id: "SM2".into(),
                    state: DeliveryState::Failed,
                    error: Some(
                        "Twilio refused it: more than 24 hours since the customer's last \
                         WhatsApp message (63016). Send an approved template instead."
                            .into()
                    ),
                }),
                "{status}"
            );
        }
    }

    #[test]
    fn malformed_forms_are_refused_with_a_reason() {
        for (body, reason) in [
            ("From=%2B1415&To=%2B1500&Body=hi", "`MessageSid`"),
            ("MessageSid=SM1&To=%2B1500&Body=hi", "`From`"),
            ("MessageSid=SM1&From=%2B1415&Body=hi", "`To`"),
            ("MessageSid=SM1&MessageStatus=exploded", "`exploded`"),
        ] {
            let error = parse_form(body.as_bytes(), 0).unwrap_err();
            assert!(
                matches!(&error, ChannelError::Malformed(r) if r.contains(reason)),
                "{body}: {error}"
            );
        }
    }

    #[test]
    fn empty_twiml_is_the_documented_document() {
        assert_eq!(
            empty_twiml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
        );
    }

    fn reply() -> OutboundMessage {
        OutboundMessage {
            channel: Channel::Sms,
            to: "+14155550123".into(),
            business_account: "+15005550006".into(),
            text: "Yes, Sundays 10–16. See you!".into(),
            idempotency_key: "reply-9".into(),
            subject: None,
            in_reply_to: None,
            template: None,
            tag: None,
            outbox_id: None,
        }
    }

    #[test]
    fn send_request_has_the_documented_url_and_form() {
        let (url, form) =
            send_request("https://api.twilio.com/", "AC123", "+15005550006", &reply());
        assert_eq!(
            url,
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        assert_eq!(
            form,
            pairs(&[
                ("To", "+14155550123"),
                ("From", "+15005550006"),
                ("Body", "Yes, Sundays 10–16. See you!")
            ])
        );
    }

    #[tokio::test]
    async fn send_posts_the_form_with_basic_auth_and_returns_the_sid() {
        let provider = fake_provider(
            201,
            r#"{"account_sid":"AC123","api_version":"2010-04-01","body":"Yes, Sundays 10–16. See you!","date_created":"Thu, 24 Aug 2023 05:01:45 +0000","direction":"outbound-api","error_code":null,"error_message":null,"from":"+15005550006","num_media":"0","num_segments":"1","price":null,"sid":"SM1f0e8ae6ade43cb3c0ce4525424e404f","status":"queued","to":"+14155550123","uri":"/2010-04-01/Accounts/AC123/Messages/SM1f0e8ae6ade43cb3c0ce4525424e404f.json"}"#,
        )
        .await;
        let client = test_client(Duration::from_secs(5));
        let sid = send(
            &client,
            &provider.base_url,
            "AC123",
            "secret-token",
            "+15005550006",
            &reply(),
        )
        .await
        .unwrap();
        assert_eq!(sid, "SM1f0e8ae6ade43cb3c0ce4525424e404f");

        let request = provider.only_request();
        assert_eq!(request.path, "/2010-04-01/Accounts/AC123/Messages.json");
        // base64("AC123:secret-token")
        assert_eq!(
            request.header("authorization"),
            Some("Basic QUMxMjM6c2VjcmV0LXRva2Vu")
        );
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            request.form(),
            send_request("", "AC123", "+15005550006", &reply()).1
        );
    }

    #[tokio::test]
    async fn server_errors_are_retryable_and_client_errors_are_not() {
        let client = test_client(Duration::from_secs(5));
        let provider = fake_provider(
            500,
            r#"{"code":20500,"message":"Internal Server Error","status":500}"#,
        )
        .await;
        let error = send(&client, &provider.base_url, "AC1", "t", "+1500", &reply())
            .await
            .unwrap_err();
        assert!(error.retryable, "{error}");

        let provider = fake_provider(
            429,
            r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
        )
        .await;
        let error = send(&client, &provider.base_url, "AC1", "t", "+1500", &reply())
            .await
            .unwrap_err();
        assert!(error.retryable, "{error}");

        let provider = fake_provider(
            400,
            r#"{"code":21211,"message":"Invalid 'To' Phone Number: +1415555XXXX","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
        )
        .await;
        let error = send(&client, &provider.base_url, "AC1", "t", "+1500", &reply())
            .await
            .unwrap_err();
        assert!(!error.retryable, "{error}");
        assert!(
            error.message.contains("21211") && error.message.contains("Invalid 'To' Phone Number"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn outside_the_whatsapp_window_is_plain_words_and_not_retried() {
        let client = test_client(Duration::from_secs(5));
        let provider = fake_provider(
            400,
            r#"{"code":63016,"message":"Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template.","more_info":"https://www.twilio.com/docs/errors/63016","status":400}"#,
        )
        .await;
        let error = send(&client, &provider.base_url, "AC1", "t", "+1500", &reply())
            .await
            .unwrap_err();
        assert!(!error.retryable, "{error}");
        assert_eq!(error.message, WINDOW_CLOSED);
    }
}
