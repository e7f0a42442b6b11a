//! Replay, the hello's checks, text limits, origins and the frames' JSON.

use super::socket::{checked_text, unseen};
use super::*;
use crate::store::StoredMessage;

fn stored(id: &str, created_ms: i64) -> StoredMessage {
    StoredMessage {
        id: id.into(),
        direction: "in".into(),
        author: "customer".into(),
        text: id.into(),
        status: "received".into(),
        action: None,
        reason: None,
        sources: None,
        created_ms,
    }
}

fn ids(messages: &[StoredMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.id.as_str()).collect()
}

#[test]
fn replay_starts_after_last_seen_and_repeats_same_millisecond_ties() {
    let recent = [
        stored("a", 1),
        stored("b", 2),
        stored("c", 2),
        stored("d", 3),
    ];
    assert_eq!(ids(&unseen(&recent, Some("b"))), ["c", "d"]);
    assert_eq!(ids(&unseen(&recent, Some("c"))), ["b", "d"]);
    assert_eq!(ids(&unseen(&recent, Some("d"))), Vec::<&str>::new());
    assert_eq!(ids(&unseen(&recent, None)), ["a", "b", "c", "d"]);
    assert_eq!(ids(&unseen(&recent, Some("gone"))), ["a", "b", "c", "d"]);
}

#[test]
fn identity_signature_is_checked_only_when_a_secret_is_set() {
    let token = "k3J9x_Qz-8mN2pLr5tVw7yA1";
    let claim = |signature: &str| UserClaim {
        id: "42".into(),
        signature: signature.into(),
    };
    let open = WebchatConfig::default();
    let anonymous = accept_hello(&open, token, None, Some(&claim("00"))).unwrap();
    assert!(anonymous.address.starts_with("visitor:"));
    assert!(
        !anonymous.address.contains(token),
        "the token is not stored"
    );

    let secured = WebchatConfig {
        identity_secret: Some(Secret::new("shop-secret")),
        ..WebchatConfig::default()
    };
    let good = identity_signature("shop-secret", "42");
    assert_eq!(
        accept_hello(&secured, token, None, Some(&claim(&good)))
            .unwrap()
            .address,
        "user:42"
    );
    let forged = identity_signature("another-secret", "42");
    assert_eq!(
        accept_hello(&secured, token, None, Some(&claim(&forged)))
            .unwrap_err()
            .code,
        "identity"
    );
    assert_eq!(
        accept_hello(&secured, token, None, Some(&claim("not hex")))
            .unwrap_err()
            .code,
        "identity"
    );
    // Anonymous visitors are still welcome when a secret is set.
    assert!(accept_hello(&secured, token, None, None).is_ok());
}

#[test]
fn short_or_odd_visitor_tokens_are_refused() {
    let config = WebchatConfig::default();
    assert!(accept_hello(&config, "abc", None, None).is_err());
    assert!(accept_hello(&config, "a b c d e f g h i j k l m n", None, None).is_err());
    assert!(accept_hello(&config, &"x".repeat(129), None, None).is_err());
}

#[test]
fn text_is_trimmed_and_capped() {
    assert_eq!(checked_text("  hi \n").unwrap(), "hi");
    assert_eq!(checked_text(" \n ").unwrap_err().0, "empty");
    assert!(checked_text(&"é".repeat(MAX_TEXT_CHARS)).is_ok());
    assert_eq!(
        checked_text(&"é".repeat(MAX_TEXT_CHARS + 1)).unwrap_err().0,
        "too_long"
    );
}

#[test]
fn origins_are_open_by_default_and_exact_when_listed() {
    assert!(WebchatConfig::default().origin_allowed(None));
    let config = WebchatConfig {
        allowed_origins: vec!["https://shop.example".into()],
        ..WebchatConfig::default()
    };
    assert!(config.origin_allowed(Some("https://shop.example")));
    assert!(!config.origin_allowed(Some("https://shop.example.evil")));
    assert!(!config.origin_allowed(None));
}

#[test]
fn frames_serialise_to_the_documented_shape() {
    let ack = ServerFrame::Ack {
        client_id: "c1".into(),
        id: "m1".into(),
    };
    assert_eq!(
        serde_json::to_value(&ack).unwrap(),
        serde_json::json!({"type": "ack", "client_id": "c1", "id": "m1"})
    );
    let message = ServerFrame::from_stored(&StoredMessage {
        author: "bot".into(),
        ..stored("m2", 5)
    });
    assert_eq!(
        serde_json::to_value(&message).unwrap(),
        serde_json::json!({"type": "message", "id": "m2", "from": "assistant", "text": "m2", "at": 5})
    );
}
