//! Property tests over what a web chat visitor sends on the socket: any
//! frame text must parse or be refused, a hello must be accepted or refused
//! without panicking, and a signed-in identity must carry the shop's HMAC:
//! thousands of forged signatures are all refused.

use super::frames::ClientFrame;
use super::socket::checked_text;
use super::*;
use crate::proptest_support::{config, hostile_text, json_text};
use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

const SECRET: &str = "webchat-identity-secret";

fn configs() -> [WebchatConfig; 2] {
    [
        WebchatConfig::default(),
        WebchatConfig {
            identity_secret: Some(Secret::new(SECRET)),
            allowed_origins: Vec::new(),
        },
    ]
}

fn frame_text() -> BoxedStrategy<String> {
    let hello = json!({"type": "hello", "visitor": "v-0123456789abcdefghijklmn", "last_seen": "m1",
        "user": {"id": "customer-42", "signature": identity_signature(SECRET, "customer-42")}});
    let message = json!({"type": "message", "client_id": "c-1", "text": "Do you have oat milk?"});
    prop_oneof![
        1 => hostile_text(),
        3 => json_text(&hello).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        3 => json_text(&message).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn proptest_socket_frames_never_panic(text in frame_text()) {
        match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame::Hello { visitor, last_seen, user }) => {
                for config in &configs() {
                    if let Ok(session) = accept_hello(config, &visitor, last_seen.clone(), user.as_ref()) {
                        // The address is a hash of the token or a checked user id, never the frame.
                        prop_assert!(session.address.len() <= "visitor:".len() + 128);
                        prop_assert!(!session.address.chars().any(char::is_control));
                        prop_assert!(session.last_seen.as_ref().is_none_or(|id| id.len() <= 64));
                    }
                }
            }
            Ok(ClientFrame::Message { client_id, text }) => {
                let _ = is_token(&client_id, 1, 64);
                if let Ok(kept) = checked_text(&text) {
                    prop_assert!(!kept.is_empty() && kept.chars().count() <= MAX_TEXT_CHARS);
                }
            }
            Err(_) => {}
        }
    }

    /// Whatever the claim, a user is let in only with the true signature.
    #[test]
    fn proptest_identity_needs_the_true_signature(id in hostile_text(), signature in hostile_text()) {
        let [_, signed] = configs();
        let claim = UserClaim { id: id.clone(), signature: signature.clone() };
        let verdict = accept_hello(&signed, "v-0123456789abcdefghijklmn", None, Some(&claim));
        let genuine = hex::decode(signature.trim()).is_ok_and(|bytes| {
            bytes == hex::decode(identity_signature(SECRET, &id)).unwrap()
        });
        if verdict.is_ok() {
            prop_assert!(genuine);
            prop_assert_eq!(verdict.unwrap().address, format!("user:{id}"));
        }
    }
}

/// The flood: forged, truncated, re-encoded, wrong-key, wrong-algorithm and
/// replayed (another user's) identity signatures; none lets anyone in.
#[test]
fn forged_identity_signatures_never_pass() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let [_, config] = configs();
    let visitor = "v-0123456789abcdefghijklmn";
    let mut refused = 0;
    for n in 0..60 {
        let user = format!("customer-{n}");
        let right = identity_signature(SECRET, &user);
        let bytes = hex::decode(&right).unwrap();
        let mut forged: Vec<String> = (0..right.len())
            .map(|cut| right[..cut].to_string())
            .collect();
        forged.push(format!("{right}0"));
        forged.push(format!("0x{right}"));
        forged.push(STANDARD.encode(&bytes));
        forged.push(URL_SAFE_NO_PAD.encode(&bytes));
        forged.push(format!("{} {}", &right[..10], &right[10..]));
        forged.push(identity_signature("another-secret", &user));
        forged.push(identity_signature(SECRET, &format!("customer-{}", n + 1)));
        forged.push(identity_signature(SECRET, &user.to_uppercase()).to_uppercase());
        forged.push(identity_signature(&user, SECRET));
        forged.push(hex::encode(Sha256::digest(format!("{SECRET}{user}"))));
        forged.push(hex::encode(Sha256::digest(user.as_bytes())));
        forged.push(String::new());
        forged.push("0".repeat(64));
        for signature in forged {
            let claim = UserClaim {
                id: user.clone(),
                signature: signature.clone(),
            };
            let verdict = accept_hello(&config, visitor, None, Some(&claim));
            assert_eq!(
                verdict.map_err(|r| r.code),
                Err("identity"),
                "{signature:?} passed"
            );
            refused += 1;
        }
        // The genuine one passes, in either hex case.
        for signature in [right.clone(), right.to_uppercase()] {
            let claim = UserClaim {
                id: user.clone(),
                signature,
            };
            assert_eq!(
                accept_hello(&config, visitor, None, Some(&claim))
                    .unwrap()
                    .address,
                format!("user:{user}")
            );
        }
    }
    assert!(refused >= 4_500, "{refused}");
}
