//! What WhatsApp, Messenger and Instagram share: Meta's Graph API webhooks and
//! send calls.
//!
//! All three subscribe with the same GET handshake (`hub.mode`,
//! `hub.verify_token`, `hub.challenge`), sign webhook bodies the same way
//! (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed by the
//! app secret>`) and answer sends with the same error object. This module holds
//! that once; [`super::whatsapp`] and [`super::meta`] re-export the checks.

use super::{constant_time_eq, excerpt, retryable_status, send_for_json, ChannelError, SendError};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// The real Graph API, for `FRONTDESK_GRAPH_BASE_URL`'s default.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";

/// The Graph API version sends use unless configured otherwise.
pub const DEFAULT_API_VERSION: &str = "v21.0";

/// The webhook signature header (give its value to [`verify_signature`]).
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// Answers Meta's subscription check (`GET ?hub.mode=subscribe&hub.verify_token=…
/// &hub.challenge=…`): the challenge to echo back with 200 when the mode is
/// `subscribe` and the token is ours, otherwise `None` (answer 403).
/// An empty `expected_token` means "not configured" and never matches.
pub fn verify_handshake(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Option<String> {
    let (Some("subscribe"), Some(token), Some(challenge)) = (mode, token, challenge) else {
        return None;
    };
    if expected_token.is_empty() || !constant_time_eq(token.as_bytes(), expected_token.as_bytes()) {
        return None;
    }
    Some(challenge.to_string())
}

/// Checks `X-Hub-Signature-256` (`sha256=<hex>`) against the HMAC-SHA256 of the
/// raw request body, keyed by the app secret. Call it on the exact bytes
/// received, before any parsing. A missing or garbled header is a bad signature.
pub fn verify_signature(
    app_secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), ChannelError> {
    let hex_digest = header
        .map(str::trim)
        .and_then(|value| value.strip_prefix("sha256="))
        .ok_or(ChannelError::BadSignature)?;
    let claimed = hex::decode(hex_digest).map_err(|_| ChannelError::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC takes keys of any length");
    mac.update(body);
    // verify_slice compares in constant time and rejects a wrong length.
    mac.verify_slice(&claimed)
        .map_err(|_| ChannelError::BadSignature)
}

/// POSTs a JSON body to a Graph endpoint with a bearer token and returns the
/// JSON answer of a 2xx. `refusal` sees the error `code` and `error_subcode` of
/// a non-2xx answer first and may name it in the product's own words (a closed
/// messaging window); otherwise [`describe_error`] does.
pub(crate) async fn post(
    provider: &str,
    client: &reqwest::Client,
    url: &str,
    access_token: &str,
    body: &serde_json::Value,
    refusal: impl FnOnce(i64, Option<i64>) -> Option<SendError>,
) -> Result<serde_json::Value, SendError> {
    let request = client.post(url).bearer_auth(access_token).json(body);
    send_for_json(provider, request, |status, answer| {
        serde_json::from_str::<ErrorAnswer>(answer)
            .ok()
            .and_then(|ErrorAnswer { error }| refusal(error.code?, error.error_subcode))
            .unwrap_or_else(|| describe_error(provider, status, answer))
    })
    .await
}

/// Graph error codes that mean "slow down or try later" even though they come
/// with a 4xx: 1 unknown/temporary, 2 service unavailable, 4/17/32/613 rate
/// limits, 80007 messaging rate limit, 130429 WhatsApp throughput,
/// 131048 spam rate limit, 131056 too many messages to one recipient.
const RETRYABLE_CODES: [i64; 10] = [1, 2, 4, 17, 32, 613, 80007, 130429, 131048, 131056];

#[derive(Deserialize)]
struct ErrorAnswer {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    message: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
    #[serde(default)]
    is_transient: bool,
}

/// Turns a non-2xx Graph answer into a [`SendError`], using the documented
/// `{"error":{"message","code","is_transient",…}}` object when there is one.
pub(crate) fn describe_error(provider: &str, status: reqwest::StatusCode, body: &str) -> SendError {
    match serde_json::from_str::<ErrorAnswer>(body) {
        Ok(ErrorAnswer { error }) => {
            let code = error.code.unwrap_or(0);
            let subcode = error
                .error_subcode
                .map(|subcode| format!("/{subcode}"))
                .unwrap_or_default();
            SendError::new(
                retryable_status(status) || error.is_transient || RETRYABLE_CODES.contains(&code),
                format!(
                    "{provider}: HTTP {status}, error {code}{subcode}: {}",
                    error.message.as_deref().unwrap_or("(no message)")
                ),
            )
        }
        Err(_) => SendError::new(
            retryable_status(status),
            format!("{provider}: HTTP {status}: {}", excerpt(body)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    const SECRET: &[u8] = b"graph-app-secret";
    const BODY: &[u8] = br#"{"object":"page","entry":[]}"#;
    /// Computed independently: python3 -c "import hmac,hashlib;
    /// print(hmac.new(b'graph-app-secret', b'{\"object\":\"page\",\"entry\":[]}',
    /// hashlib.sha256).hexdigest())"
    const GOOD: &str = "sha256=dd950d05a72116ba8b55284f75cecf5d4a47b4883a7fa7a8a4dddb0ba02b5da9";

    #[test]
    fn handshake_returns_the_challenge_only_for_subscribe_with_our_token() {
        let ok = verify_handshake(
            Some("subscribe"),
            Some("s3cret"),
            Some("1158201444"),
            "s3cret",
        );
        assert_eq!(ok.as_deref(), Some("1158201444"));
        assert_eq!(
            verify_handshake(Some("subscribe"), Some("wrong"), Some("1"), "s3cret"),
            None
        );
        assert_eq!(
            verify_handshake(Some("unsubscribe"), Some("s3cret"), Some("1"), "s3cret"),
            None
        );
        assert_eq!(
            verify_handshake(None, Some("s3cret"), Some("1"), "s3cret"),
            None
        );
        assert_eq!(
            verify_handshake(Some("subscribe"), None, Some("1"), "s3cret"),
            None
        );
        assert_eq!(
            verify_handshake(Some("subscribe"), Some("s3cret"), None, "s3cret"),
            None
        );
    }

    #[test]
    fn handshake_never_matches_an_unconfigured_token() {
        assert_eq!(
            verify_handshake(Some("subscribe"), Some(""), Some("1"), ""),
            None
        );
    }

    #[test]
    fn signature_matches_an_independently_computed_digest() {
        assert_eq!(verify_signature(SECRET, Some(GOOD), BODY), Ok(()));
        let upper = format!("sha256={}", GOOD["sha256=".len()..].to_uppercase());
        assert_eq!(verify_signature(SECRET, Some(&upper), BODY), Ok(()));
    }

    #[test]
    fn signature_fails_when_one_byte_of_the_body_changes() {
        let mut tampered = BODY.to_vec();
        tampered[2] = b'O';
        assert_eq!(
            verify_signature(SECRET, Some(GOOD), &tampered),
            Err(ChannelError::BadSignature)
        );
    }

    #[test]
    fn signature_fails_with_another_secret() {
        assert_eq!(
            verify_signature(b"other-secret", Some(GOOD), BODY),
            Err(ChannelError::BadSignature)
        );
    }

    #[test]
    fn missing_garbled_or_wrongly_prefixed_headers_are_bad_signatures() {
        let hex_only = &GOOD["sha256=".len()..];
        for header in [
            None,
            Some(""),
            Some(hex_only),
            Some(&*format!("sha1={hex_only}")),
            Some("sha256=not-hex"),
            Some("sha256=dd950d05"),
        ] {
            assert_eq!(
                verify_signature(SECRET, header, BODY),
                Err(ChannelError::BadSignature),
                "header {header:?}"
            );
        }
    }

    #[test]
    fn graph_errors_are_retryable_for_5xx_rate_limits_and_transient_flags() {
        let expired = r#"{"error":{"message":"Error validating access token","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"AbCdEf"}}"#;
        let error = describe_error("whatsapp", StatusCode::UNAUTHORIZED, expired);
        assert!(!error.retryable);
        assert!(error.message.contains("190/463"), "{}", error.message);
        assert!(error.message.contains("Error validating access token"));

        let throttled = r#"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"fbtrace_id":"x"}}"#;
        assert!(describe_error("meta", StatusCode::BAD_REQUEST, throttled).retryable);

        let transient = r#"{"error":{"message":"An unexpected error has occurred.","code":2,"is_transient":true}}"#;
        assert!(describe_error("meta", StatusCode::BAD_REQUEST, transient).retryable);

        let outside_window = r#"{"error":{"message":"(#10) This message is sent outside of allowed window.","code":10,"error_subcode":2018278}}"#;
        assert!(!describe_error("meta", StatusCode::BAD_REQUEST, outside_window).retryable);

        let html = describe_error("meta", StatusCode::BAD_GATEWAY, "<html>Bad Gateway</html>");
        assert!(html.retryable);
        assert!(html.message.contains("<html>Bad Gateway</html>"));
    }
}
