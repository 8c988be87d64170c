//! What a customer says about their notices ("stop notices", "offers on"), read from a whole
//! message and kept on the customer with the turn that said it.

use crate::store::{Change, Customer};

/// What a customer may say about their notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    StopNotices,
    StartNotices,
    OffersOn,
    OffersOff,
}

/// The notice command in `text`, if the whole message is one: "stop notices" /
/// "notices off", "notices on" / "start notices", "offers on", "offers off" (any case,
/// with or without a leading `/`, `_` for a space: `/notices_off`).
pub fn preference_command(text: &str) -> Option<Preference> {
    let words: Vec<String> = text
        .trim()
        .trim_start_matches('/')
        .split(|c: char| c.is_whitespace() || c == '_')
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    match words.join(" ").as_str() {
        "stop notices" | "notices off" | "no more notices" => Some(Preference::StopNotices),
        "start notices" | "notices on" => Some(Preference::StartNotices),
        "offers on" | "start offers" => Some(Preference::OffersOn),
        "offers off" | "stop offers" => Some(Preference::OffersOff),
        _ => None,
    }
}

/// Applies a notice command of the customer's turn to `customer` (written with the turn's
/// change); the bot's answer.
pub(in crate::desk) fn apply_preference(
    customer: &mut Customer,
    preference: Preference,
    change: &mut Change,
) -> String {
    let n = &mut customer.notices;
    let said = match preference {
        Preference::StopNotices => {
            n.opted_out = true;
            "Done: we won't send you notices about your orders any more. Write \"notices on\" \
             to have them again."
        }
        Preference::StartNotices => {
            n.opted_out = false;
            "Done: we'll tell you here when an order is delayed, ships or is refunded. Write \
             \"stop notices\" to stop them."
        }
        Preference::OffersOn => {
            n.offers = true;
            "Done: we'll also tell you when something you asked about is back in stock. Write \
             \"offers off\" to stop that."
        }
        Preference::OffersOff => {
            n.offers = false;
            "Done: no more offers. Notices about your orders still come unless you write \
             \"stop notices\"."
        }
    };
    change.customers.retain(|c| c.id != customer.id);
    change.customers.push(customer.clone());
    tracing::info!(customer = %customer.id, ?preference, "notice preference changed");
    said.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_commands_are_whole_messages_only() {
        assert_eq!(
            preference_command("Stop notices!"),
            Some(Preference::StopNotices)
        );
        assert_eq!(
            preference_command("/notices_off"),
            Some(Preference::StopNotices)
        );
        assert_eq!(
            preference_command(" notices on "),
            Some(Preference::StartNotices)
        );
        assert_eq!(preference_command("offers on"), Some(Preference::OffersOn));
        assert_eq!(preference_command("please stop notices for my order"), None);
        assert_eq!(preference_command("stop"), None);
    }
}
