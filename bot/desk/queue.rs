//! Human queues, pure: the order conversations are served in (those left out of hours
//! first, then priority, then waiting time), the positions customers are told, and who may
//! join. No locks, no store: callers pass the entries.
//!
//! Anyone can open a widget or invent a REST user id, and a keyword ("lawyer") escalates at
//! once, so strangers could fill a queue. An anonymous customer (not signed in, no order
//! checked, no tier) is therefore queued only while the queue has room and their address has
//! fewer than [`ANONYMOUS_PER_ADDRESS`] anonymous chats waiting, and leaves the queue after
//! [`ANONYMOUS_QUEUE_TTL`] without writing (see `idle::expire_anonymous`). A checked or
//! high-value customer is never refused for capacity.

use std::net::IpAddr;

use super::copy;
use crate::message::ConversationId;
use crate::store::{ConversationRecord, Customer, IdentityLevel, QueueEntry};

/// Anonymous chats from one network address waiting at once (all queues).
pub const ANONYMOUS_PER_ADDRESS: usize = 3;
/// An anonymous chat that has not written for this long leaves its queue.
pub const ANONYMOUS_QUEUE_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Whether nobody knows who waits: not signed in or checked, and of no paying tier.
pub(super) fn is_anonymous(record: &ConversationRecord, customer: &Customer) -> bool {
    let known_tier = matches!(customer.tier.as_deref(), Some("gold" | "vip"));
    record.access.level == IdentityLevel::Anonymous && !known_tier
}

/// Why an anonymous customer is not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The queue holds `max_waiting` entries.
    Full,
    /// Their address has [`ANONYMOUS_PER_ADDRESS`] anonymous chats waiting.
    Address,
}

impl Refusal {
    pub(super) fn metric(self) -> &'static str {
        match self {
            Refusal::Full => "queue_full",
            Refusal::Address => "queue_address_full",
        }
    }

    pub(super) fn words(self) -> String {
        match self {
            Refusal::Full => copy::queue_full(),
            Refusal::Address => copy::queue_address_full(),
        }
    }
}

/// Why an anonymous customer from `origin` may not join `queue` (holding at most `cap`).
pub(super) fn refusal(
    entries: &[QueueEntry],
    queue: &str,
    cap: usize,
    origin: Option<IpAddr>,
) -> Option<Refusal> {
    if entries.iter().filter(|e| e.queue == queue).count() >= cap {
        return Some(Refusal::Full);
    }
    let from_there = |ip: IpAddr| {
        entries
            .iter()
            .filter(|e| e.anonymous && e.origin == Some(ip))
            .count()
    };
    match origin {
        Some(ip) if from_there(ip) >= ANONYMOUS_PER_ADDRESS => Some(Refusal::Address),
        _ => None,
    }
}

/// Entries of `queue` in service order. Messages left while the queue was closed come
/// first, earliest opening first (at opening they are ahead of whatever arrives then,
/// whatever its priority); then higher priority first, then longer waiting.
pub(super) fn ordered<'a>(entries: &'a [QueueEntry], queue: &str) -> Vec<&'a QueueEntry> {
    let mut list: Vec<_> = entries.iter().filter(|e| e.queue == queue).collect();
    let held = |e: &QueueEntry| (e.left_for_opening.is_none(), e.left_for_opening);
    list.sort_by(|a, b| {
        held(a)
            .cmp(&held(b))
            .then(b.priority.cmp(&a.priority))
            .then(a.enqueued_at.cmp(&b.enqueued_at))
            .then(a.conversation_id.cmp(&b.conversation_id))
    });
    list
}

/// 1-based position of `id` in `queue` (0 when it is not there).
pub(super) fn position(entries: &[QueueEntry], queue: &str, id: &ConversationId) -> usize {
    ordered(entries, queue)
        .iter()
        .position(|e| &e.conversation_id == id)
        .map_or(0, |p| p + 1)
}

/// Every conversation of `queue` with its position.
pub(super) fn positions(entries: &[QueueEntry], queue: &str) -> Vec<(ConversationId, usize)> {
    ordered(entries, queue)
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e.conversation_id.clone(), i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ChannelKind;
    use chrono::Utc;

    fn entry(id: &str, priority: i64, waited_secs: i64) -> QueueEntry {
        QueueEntry {
            queue: "general".into(),
            conversation_id: ConversationId(id.into()),
            customer: id.into(),
            channel: ChannelKind::Web,
            priority,
            enqueued_at: Utc::now() - chrono::Duration::seconds(waited_secs),
            reasons: Vec::new(),
            anonymous: false,
            origin: None,
            left_for_opening: None,
        }
    }

    #[test]
    fn anonymous_chats_are_capped_per_address_and_by_room() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let mut entries: Vec<QueueEntry> = (0..ANONYMOUS_PER_ADDRESS)
            .map(|i| QueueEntry {
                anonymous: true,
                origin: Some(ip),
                ..entry(&format!("a{i}"), 0, 10)
            })
            .collect();
        assert_eq!(
            refusal(&entries, "general", 100, Some(ip)),
            Some(Refusal::Address)
        );
        // Another address, or a platform chat without one, still gets in.
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        assert_eq!(refusal(&entries, "general", 100, Some(other)), None);
        assert_eq!(refusal(&entries, "general", 100, None), None);
        // Known customers from that address do not count against it.
        entries.iter_mut().for_each(|e| e.anonymous = false);
        assert_eq!(refusal(&entries, "general", 100, Some(ip)), None);
        assert_eq!(
            refusal(&entries, "general", 3, Some(other)),
            Some(Refusal::Full)
        );
    }

    #[test]
    fn higher_priority_first_then_longer_waiting() {
        let entries = vec![entry("a", 0, 60), entry("b", 5, 10), entry("c", 0, 120)];
        let order: Vec<_> = positions(&entries, "general")
            .into_iter()
            .map(|(id, p)| (id.0, p))
            .collect();
        assert_eq!(
            order,
            vec![("b".into(), 1), ("c".into(), 2), ("a".into(), 3)]
        );
        assert_eq!(
            position(&entries, "general", &ConversationId("a".into())),
            3
        );
        assert_eq!(position(&entries, "other", &ConversationId("a".into())), 0);
    }

    #[test]
    fn messages_left_out_of_hours_come_first_at_opening_whatever_the_priority() {
        let opening = Utc::now() - chrono::Duration::seconds(600);
        let night = |id: &str, priority, waited| QueueEntry {
            left_for_opening: Some(opening),
            ..entry(id, priority, waited)
        };
        let earlier_night = QueueEntry {
            left_for_opening: Some(opening - chrono::Duration::days(1)),
            ..entry("old", 0, 90_000)
        };
        // "vip" arrived after opening with a high priority; "late" and "low" were left
        // overnight, "old" the night before.
        let entries = vec![
            entry("vip", 90, 60),
            night("low", 0, 3_000),
            night("late", 5, 2_000),
            earlier_night,
        ];
        let order: Vec<_> = ordered(&entries, "general")
            .into_iter()
            .map(|e| e.conversation_id.0.as_str())
            .collect();
        assert_eq!(order, vec!["old", "late", "low", "vip"]);
    }
}
