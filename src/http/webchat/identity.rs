//! Who a hello speaks for: the visitor token's shape, the signed-in user's
//! HMAC-SHA256 identity signature (checked in constant time), and the
//! contact address a session uses (`visitor:<hash>` or `user:<id>`).

use super::{UserClaim, WebchatConfig};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Who is on the other end of an accepted hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::http) struct Session {
    /// The contact's address in the store: `visitor:<hash of the token>`, or
    /// `user:<id>` for a verified signed-in user (their history follows them
    /// across devices).
    pub(in crate::http) address: String,
    pub(super) last_seen: Option<String>,
}

/// Why a hello is refused (the socket is then closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::http) struct Refusal {
    pub(in crate::http) code: &'static str,
    pub(in crate::http) message: &'static str,
}

pub(in crate::http) fn is_token(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The hex HMAC-SHA256 of `user_id` under `secret`: what the shop's backend
/// computes and passes to `Frontdesk.identify(userId, signature)`.
pub fn identity_signature(secret: &str, user_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn identity_holds(secret: &str, user_id: &str, signature: &str) -> bool {
    let Ok(signature) = hex::decode(signature.trim()) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(user_id.as_bytes());
    mac.verify_slice(&signature).is_ok() // constant time
}

/// Checks a hello (or an upload's credentials) and says who the visitor is.
pub(in crate::http) fn accept_hello(
    config: &WebchatConfig,
    visitor: &str,
    last_seen: Option<String>,
    user: Option<&UserClaim>,
) -> Result<Session, Refusal> {
    // At least 128 bits of the widget's randomness (22 base64url or 32 hex characters).
    if !is_token(visitor, 22, 128) {
        return Err(Refusal {
            code: "bad_visitor",
            message: "the visitor token must be 22 to 128 letters, digits, - or _",
        });
    }
    let address = match (user, &config.identity_secret) {
        (Some(user), Some(secret)) => {
            let id_ok = !user.id.is_empty()
                && user.id.len() <= 128
                && !user.id.chars().any(char::is_control);
            if !id_ok || !identity_holds(secret.expose(), &user.id, &user.signature) {
                return Err(Refusal {
                    code: "identity",
                    message: "the user's identity signature does not match",
                });
            }
            format!("user:{}", user.id)
        }
        // Without a secret a claimed user id proves nothing: stay anonymous.
        _ => {
            let digest = Sha256::new()
                .chain_update(b"frontdesk-webchat-visitor:")
                .chain_update(visitor.as_bytes())
                .finalize();
            format!("visitor:{}", hex::encode(&digest[..16]))
        }
    };
    let last_seen = last_seen.filter(|id| is_token(id, 1, 64));
    Ok(Session { address, last_seen })
}
