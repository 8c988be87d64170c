//! Human queues, pure: the order conversations are served in (priority, then waiting
//! time) and the positions customers are told. No locks, no store: callers pass the entries.

use crate::message::ConversationId;
use crate::store::QueueEntry;

/// Entries of `queue` in service order: higher priority first, then longer waiting.
pub(super) fn ordered<'a>(entries: &'a [QueueEntry], queue: &str) -> Vec<&'a QueueEntry> {
    let mut list: Vec<_> = entries.iter().filter(|e| e.queue == queue).collect();
    list.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
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
        }
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
}
