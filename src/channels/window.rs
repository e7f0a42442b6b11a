//! The providers' customer-service windows: WhatsApp allows free-form replies
//! for 24 hours after the customer's last message; Messenger and Instagram for
//! 24 hours, then for 7 days with the `HUMAN_AGENT` message tag (a person's
//! reply). Counted from the provider's timestamp of the customer's last message.

use crate::domain::Channel;

pub const DAY_MS: i64 = 24 * 3600 * 1000;
/// How long Messenger's `HUMAN_AGENT` tag keeps a conversation open.
pub const HUMAN_AGENT_MS: i64 = 7 * DAY_MS;
pub const HUMAN_AGENT_TAG: &str = "HUMAN_AGENT";

/// Where a conversation's window stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Window {
    pub channel: String,
    /// The provider's time of the customer's last message (ms).
    pub last_customer_ms: i64,
    /// When free-form replies stop being allowed (ms).
    pub closes_ms: i64,
    pub open: bool,
    /// A reply now must carry the `HUMAN_AGENT` tag (Messenger, Instagram).
    pub needs_human_agent_tag: bool,
}

/// The window of a conversation on `channel`, or `None` when the channel has
/// none (SMS, email, web chat). No customer message at all means closed.
pub fn window(channel: Channel, last_customer_ms: Option<i64>, now_ms: i64) -> Option<Window> {
    let reach = match channel {
        Channel::Whatsapp => DAY_MS,
        Channel::Messenger | Channel::Instagram => HUMAN_AGENT_MS,
        _ => return None,
    };
    let last = last_customer_ms.unwrap_or(i64::MIN / 2);
    let closes_ms = last.saturating_add(reach);
    Some(Window {
        channel: channel.as_str().to_string(),
        last_customer_ms: last_customer_ms.unwrap_or(0),
        closes_ms: closes_ms.max(0),
        open: now_ms < closes_ms,
        needs_human_agent_tag: channel != Channel::Whatsapp
            && now_ms >= last.saturating_add(DAY_MS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_closes_24_hours_after_the_customers_message() {
        let last = 1_000_000_000_000;
        let open = window(Channel::Whatsapp, Some(last), last + DAY_MS - 1).unwrap();
        assert!(open.open && !open.needs_human_agent_tag);
        assert_eq!(open.closes_ms, last + DAY_MS);
        assert!(
            !window(Channel::Whatsapp, Some(last), last + DAY_MS)
                .unwrap()
                .open
        );
        assert!(!window(Channel::Whatsapp, None, last).unwrap().open);
    }

    #[test]
    fn messenger_needs_the_human_agent_tag_after_a_day_and_closes_after_seven() {
        let last = 1_000_000_000_000;
        let fresh = window(Channel::Messenger, Some(last), last + 1000).unwrap();
        assert!(fresh.open && !fresh.needs_human_agent_tag);
        let tagged = window(Channel::Instagram, Some(last), last + 2 * DAY_MS).unwrap();
        assert!(tagged.open && tagged.needs_human_agent_tag);
        assert!(
            !window(Channel::Messenger, Some(last), last + 7 * DAY_MS)
                .unwrap()
                .open
        );
    }

    #[test]
    fn sms_email_and_web_chat_have_no_window() {
        for channel in [Channel::Sms, Channel::Email, Channel::Webchat] {
            assert_eq!(window(channel, Some(0), 10 * DAY_MS), None);
        }
    }
}
