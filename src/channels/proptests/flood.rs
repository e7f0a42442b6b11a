//! Signature floods at the verify functions: for every provider, thousands
//! of forged, truncated, re-encoded, wrong-algorithm, empty and replayed
//! signatures, none of which may pass. (The same kinds go through the real
//! router in tests/api/hostile.rs.)

use super::super::{email, graph, twilio, ChannelError};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// Hex HMAC-SHA256 of `body` under `secret`, as Meta signs.
pub(super) fn graph_digest(secret: &[u8], body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, &[body]))
}

/// Hex HMAC-SHA256 of `timestamp + token`, as Mailgun signs.
pub(super) fn mailgun_digest(key: &[u8], timestamp: &str, token: &str) -> String {
    hex::encode(hmac_sha256(key, &[timestamp.as_bytes(), token.as_bytes()]))
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A deterministic stream of bytes (xorshift), so a failure can be rerun.
pub(super) struct Noise(u64);

impl Noise {
    pub(super) fn new(seed: u64) -> Noise {
        Noise(seed | 1)
    }
    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

/// Every way to spell a signature that is not `right` (the true digest,
/// whose own hex spellings in either case are genuine and left out):
/// truncations, other encodings of it, blanks inside it, and `wrong` digests
/// in several spellings.
pub(super) fn respellings(right: &[u8], wrong: &[Vec<u8>]) -> Vec<String> {
    let hex_right = hex::encode(right);
    let mut out = Vec::new();
    for cut in 0..hex_right.len() {
        out.push(hex_right[..cut].to_string());
    }
    out.push(format!("{hex_right}0"));
    out.push(format!("{hex_right}00"));
    out.push(format!("0x{hex_right}"));
    for encoded in [
        STANDARD.encode(right),
        STANDARD_NO_PAD.encode(right),
        URL_SAFE_NO_PAD.encode(right),
    ] {
        out.push(encoded);
    }
    for at in (2..hex_right.len()).step_by(7) {
        for blank in [" ", "\t", "\n", "\u{a0}", ":", "-"] {
            out.push(format!("{}{blank}{}", &hex_right[..at], &hex_right[at..]));
        }
    }
    for digest in wrong {
        let hex_wrong = hex::encode(digest);
        out.push(hex_wrong.clone());
        out.push(hex_wrong.to_uppercase());
        out.push(STANDARD.encode(digest));
        out.push(format!(" {hex_wrong}\r\n"));
    }
    out.push(String::new());
    out.push(" ".into());
    out
}

#[test]
fn forged_graph_signatures_never_pass() {
    let secret = b"test-app-secret";
    let mut noise = Noise::new(0x5eed);
    let mut tried = 0;
    for n in 0..24 {
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{"n":{n}}}}}]}}]}}"#
        );
        let body = body.as_bytes();
        let right = hmac_sha256(secret, &[body]);
        let wrong = vec![
            hmac_sha256(b"another-secret", &[body]),
            hmac_sha256(secret, &[&body[..body.len() - 1]]),
            hmac_sha256(secret, &[format!("{n} replayed").as_bytes()]),
            hmac_sha256(body, &[secret]),
            Sha256::digest(body).to_vec(),
            Sha256::digest([&secret[..], body].concat()).to_vec(),
            hmac_sha1(secret, &[body]),
            hmac_sha512(secret, &[body]),
            noise.bytes(32),
            noise.bytes(32),
            vec![0; 32],
        ];
        let mut headers: Vec<String> = respellings(&right, &wrong)
            .into_iter()
            .map(|spelled| format!("sha256={spelled}"))
            .collect();
        let hex_right = hex::encode(&right);
        for prefix in [
            "",
            "sha1=",
            "sha512=",
            "SHA256=",
            "sha256:",
            "sha256 =",
            "sha256==",
            "hmac-sha256=",
        ] {
            headers.push(format!("{prefix}{hex_right}"));
        }
        headers.push(format!("sha1={}", hex::encode(hmac_sha1(secret, &[body]))));
        headers.push(format!(
            "sha512={}",
            hex::encode(hmac_sha512(secret, &[body]))
        ));
        headers.push("sha256=".into());
        for header in &headers {
            assert_eq!(
                graph::verify_signature(secret, Some(header), body),
                Err(ChannelError::BadSignature),
                "{header:?} passed"
            );
            tried += 1;
        }
        assert_eq!(
            graph::verify_signature(secret, None, body),
            Err(ChannelError::BadSignature)
        );
        // The genuine one, so the flood is known to aim at a working check.
        assert_eq!(
            graph::verify_signature(secret, Some(&format!("sha256={hex_right}")), body),
            Ok(())
        );
        tried += 1;
    }
    assert!(tried >= 3_000, "{tried}");
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn forged_twilio_signatures_never_pass() {
    let token = "test-twilio-token";
    let url = "https://shop.example/webhooks/twilio";
    let mut noise = Noise::new(0x7411);
    let mut tried = 0;
    for n in 0..40 {
        let sid = format!("SM{n:032}");
        let params = form(&[
            ("MessageSid", &sid),
            ("From", "+14155550123"),
            ("To", "+15005550006"),
            ("Body", "hi"),
        ]);
        let sign = |key: &str, url: &str, params: &[(String, String)]| {
            let mut sorted: Vec<_> = params.iter().collect();
            sorted.sort();
            let mut parts: Vec<Vec<u8>> = vec![url.as_bytes().to_vec()];
            for (k, v) in sorted {
                parts.push(k.as_bytes().to_vec());
                parts.push(v.as_bytes().to_vec());
            }
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            (
                hmac_sha1(key.as_bytes(), &refs),
                hmac_sha256(key.as_bytes(), &refs),
            )
        };
        let (right, sha256_instead) = sign(token, url, &params);
        assert_eq!(
            twilio::signature(token, url, &params),
            STANDARD.encode(&right)
        );
        let mut changed = params.clone();
        changed[3].1 = "hi!".into();
        let wrong = vec![
            sign("another-token", url, &params).0,
            sign(token, "https://shop.example/webhooks/twilio/", &params).0,
            sign(token, "http://shop.example/webhooks/twilio", &params).0,
            sign(token, url, &changed).0,
            sign(token, url, &params[..3]).0,
            sha256_instead,
            noise.bytes(20),
            vec![0; 20],
        ];
        let mut headers: Vec<String> = respellings(&right, &wrong);
        // Base64 spellings of the true digest that Twilio never sends.
        let good = STANDARD.encode(&right);
        for cut in 0..good.len() {
            headers.push(good[..cut].to_string());
        }
        headers.push(format!("{good}="));
        headers.push(format!("{good}A"));
        headers.push(good.replace('=', "%3D"));
        headers.push(hex::encode(&right).to_uppercase());
        headers.retain(|header| header.trim() != good);
        for header in &headers {
            assert_eq!(
                twilio::verify_signature(token, Some(header), url, &params),
                Err(ChannelError::BadSignature),
                "{header:?} passed"
            );
            tried += 1;
        }
        assert_eq!(
            twilio::verify_signature(token, None, url, &params),
            Err(ChannelError::BadSignature)
        );
        assert_eq!(
            twilio::verify_signature(token, Some(&good), url, &params),
            Ok(())
        );
        tried += 1;
    }
    assert!(tried >= 3_000, "{tried}");
}

#[test]
fn forged_and_stale_mailgun_signatures_never_pass() {
    let key = b"mailgun-signing-key";
    let now: i64 = 1_749_416_400;
    let mut noise = Noise::new(0x3a11);
    let mut tried = 0;
    for n in 0..30 {
        let timestamp = (now - 60 + n).to_string();
        let token = hex::encode(noise.bytes(25));
        let right = hmac_sha256(key, &[timestamp.as_bytes(), token.as_bytes()]);
        let wrong = vec![
            hmac_sha256(b"another-key", &[timestamp.as_bytes(), token.as_bytes()]),
            hmac_sha256(key, &[token.as_bytes(), timestamp.as_bytes()]),
            hmac_sha256(key, &[timestamp.as_bytes()]),
            hmac_sha256(key, &[token.as_bytes()]),
            hmac_sha256(
                key,
                &[(now - 59 + n).to_string().as_bytes(), token.as_bytes()],
            ),
            hmac_sha1(key, &[timestamp.as_bytes(), token.as_bytes()]),
            hmac_sha512(key, &[timestamp.as_bytes(), token.as_bytes()]),
            Sha256::digest(format!("{timestamp}{token}")).to_vec(),
            noise.bytes(32),
        ];
        for signature in respellings(&right, &wrong) {
            let fields = form(&[
                ("timestamp", &timestamp),
                ("token", &token),
                ("signature", &signature),
            ]);
            assert_eq!(
                email::verify_form(key, &fields, now),
                Err(ChannelError::BadSignature),
                "{signature:?} passed"
            );
            tried += 1;
        }
        let signature = hex::encode(&right);
        for missing in ["timestamp", "token", "signature"] {
            let mut fields = form(&[
                ("timestamp", &timestamp),
                ("token", &token),
                ("signature", &signature),
            ]);
            fields.retain(|(name, _)| name != missing);
            assert_eq!(
                email::verify_form(key, &fields, now),
                Err(ChannelError::BadSignature)
            );
            tried += 1;
        }
        // Genuinely signed, but too old or too far ahead.
        for age in [15 * 60 + 1, 3_600, 86_400, -(15 * 60) - 1, -86_400] {
            let stale = (now - age).to_string();
            let fields = form(&[
                ("timestamp", &stale),
                ("token", &token),
                ("signature", &mailgun_digest(key, &stale, &token)),
            ]);
            assert_eq!(
                email::verify_form(key, &fields, now),
                Err(ChannelError::StaleTimestamp)
            );
            tried += 1;
        }
        let fields = form(&[
            ("timestamp", &timestamp),
            ("token", &token),
            ("signature", &signature),
        ]);
        assert_eq!(email::verify_form(key, &fields, now), Ok(()));
        tried += 1;
    }
    assert!(tried >= 2_500, "{tried}");
}

/// Replays of one genuine post: the signature holds every time, so the
/// store's claim on its (timestamp, token) is what refuses them.
#[tokio::test]
async fn replayed_mailgun_posts_are_refused_by_the_store() {
    let dir = std::env::temp_dir().join(format!("frontdesk-flood-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = crate::store::Store::connect(&crate::store::Store::sqlite_url(&dir))
        .await
        .unwrap();
    let key = b"mailgun-signing-key";
    let now: i64 = 1_749_416_400;
    let (timestamp, token) = (now.to_string(), "a-token-seen-once".to_string());
    let fields = form(&[
        ("timestamp", &timestamp),
        ("token", &token),
        ("signature", &mailgun_digest(key, &timestamp, &token)),
    ]);
    let mut accepted = 0;
    for replay in 0..1_000 {
        let now = now + replay % 600;
        assert_eq!(email::verify_form(key, &fields, now), Ok(()));
        let (timestamp, token) = email::signed_pair(&fields).unwrap();
        let claim = crate::store::replay_key("mailgun", timestamp, token);
        if store
            .claim_replay_key(&claim, now * 1000, 31 * 60 * 1000)
            .await
            .unwrap()
        {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "only the first use of the pair is accepted");
    let _ = std::fs::remove_dir_all(&dir);
}
