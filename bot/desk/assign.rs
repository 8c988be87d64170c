//! Auto-assignment (`[engine] auto_assign`): a waiting conversation goes by itself to the
//! available agent (`presence.rs`) who serves its queue (`AgentConfig::queues`, empty: every
//! queue) and has the most room (capacity minus conversations owned); among equals, the one
//! after whoever got the queue's last conversation, in name order (round-robin). Never past
//! capacity; the queue's own order (`queue::ordered`) decides who is served first.
//!
//! It runs when a conversation enters a queue (after the turn is stored), when an agent frees
//! room (close, hand back), when an agent becomes available or another goes away, and every
//! few seconds on the node holding the `assign` lease (`availability::spawn_watch`: whatever the
//! others missed, conversations an idle agent lost). Each hand-out is a claim
//! (`locked::take`, noted `Claimed { auto: true }`) under the same locks, with the agent chosen
//! again from the assignments read under those locks: two nodes never give one conversation
//! to two agents, and nobody gets more than their capacity. Manual claims work as before.

use std::collections::HashSet;

use super::error::DeskError;
use super::inner::Inner;
use super::locked::{locked_action, take};
use super::presence::present;
use super::queue;
use crate::config::AgentConfig;
use crate::message::{ConversationId, Status};
use crate::policy::Rules;

/// The setting (`Coordination::set_setting`) holding who got a queue's last conversation.
const LAST: &str = "assign-last:";

/// At most this many conversations one pass over a queue gives out.
const PER_PASS: usize = 256;

/// A conversation entered `queue`: it goes to an agent with room, if any. Failures are
/// logged (the next trigger or the watcher tries again); the customer's turn stands.
pub(super) async fn queue_entered(inner: &Inner, queue: &str) {
    if !inner.auto_assign {
        return;
    }
    if let Err(e) = serve(inner, queue).await {
        tracing::warn!(queue, error = %e, "auto-assignment failed; the conversation waits for the next try");
    }
}

/// An agent has room again (or one more agent has): the waiting conversations of every
/// queue go to whoever has room.
pub(super) async fn room_freed(inner: &Inner) {
    if !inner.auto_assign {
        return;
    }
    if let Err(e) = serve_all(inner).await {
        tracing::warn!(error = %e, "auto-assignment failed; the conversations wait for the next try");
    }
}

/// Hands out the waiting conversations of every queue that has some. Returns how many.
pub(super) async fn serve_all(inner: &Inner) -> Result<usize, DeskError> {
    let mut queues: Vec<String> = inner
        .store
        .queue_entries()
        .await?
        .into_iter()
        .map(|e| e.queue)
        .collect();
    queues.sort();
    queues.dedup();
    let mut given = 0;
    for q in queues {
        given += serve(inner, &q).await?;
    }
    Ok(given)
}

/// Gives the conversations waiting in `queue`, in the queue's order, to the available agents
/// serving it, while one has room. Returns how many it gave.
pub(super) async fn serve(inner: &Inner, queue: &str) -> Result<usize, DeskError> {
    let last_key = format!("{LAST}{queue}");
    let mut passed: HashSet<ConversationId> = HashSet::new();
    let mut given = 0;
    while given < PER_PASS {
        let serving = serving(inner, queue).await?;
        if serving.is_empty() {
            break;
        }
        let entries = inner.store.queue_entries().await?;
        let next = queue::ordered(&entries, queue)
            .into_iter()
            .map(|e| e.conversation_id.clone())
            .find(|id| !passed.contains(id));
        let Some(next) = next else { break };
        let last = inner
            .store
            .settings_under(&last_key)
            .await?
            .into_iter()
            .find(|(name, _)| *name == last_key)
            .map(|(_, agent)| agent);
        // Nobody has room: no need to take any lock.
        let assignments = inner.store.assignments().await?;
        if choose(&serving, &assignments, last.as_deref()).is_none() {
            break;
        }
        let mut chosen = None;
        let outcome = locked_action(inner, &next, |inner, a| {
            if a.record.status != Status::Queued || a.record.queue.as_deref() != Some(queue) {
                return Err(DeskError::Conflict(
                    "no longer waiting in this queue".into(),
                ));
            }
            // Chosen again from the assignments read under the locks.
            let agent = choose(&serving, a.assignments, last.as_deref())
                .ok_or_else(|| DeskError::Conflict("no available agent has room".into()))?;
            let queue = take(inner, a, &agent, true)?;
            chosen = Some(agent);
            Ok(queue)
        })
        .await;
        match outcome {
            Ok(_) => {
                let agent = chosen.unwrap_or_default();
                tracing::info!(queue, agent = %agent, conversation = %next, "conversation auto-assigned");
                inner.store.set_setting(&last_key, Some(&agent)).await?;
                given += 1;
            }
            // Taken meanwhile (a claim, another node), or nobody had room after all: the
            // next one in line, with the queue read again.
            Err(DeskError::Conflict(_) | DeskError::NotFound) => {
                passed.insert(next);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(given)
}

/// The available agents who serve `queue`, with their capacity, in name order.
async fn serving(inner: &Inner, queue: &str) -> Result<Vec<(String, usize)>, DeskError> {
    Ok(present(inner)
        .await?
        .into_keys()
        .filter_map(|name| {
            let config = inner.agents.get(&name)?;
            serves(config, queue).then_some((name, config.capacity))
        })
        .collect())
}

/// Whether `agent` takes conversations of `queue` (an empty list: every queue).
pub(super) fn serves(agent: &AgentConfig, queue: &str) -> bool {
    agent.queues.is_empty() || agent.queues.iter().any(|q| q == queue)
}

/// Who gets the next conversation: of `serving` (name, capacity; in name order), the one
/// with the most room given `assignments`; among equals, the first after `last` in name
/// order (wrapping round). `None` when nobody has room.
pub(super) fn choose(
    serving: &[(String, usize)],
    assignments: &[(String, ConversationId)],
    last: Option<&str>,
) -> Option<String> {
    let room = |name: &str, capacity: usize| {
        let active = assignments.iter().filter(|(a, _)| a == name).count();
        capacity.saturating_sub(active)
    };
    let most = serving.iter().map(|(n, c)| room(n, *c)).max()?;
    if most == 0 {
        return None;
    }
    let tied: Vec<&str> = serving
        .iter()
        .filter(|(n, c)| room(n, *c) == most)
        .map(|(n, _)| n.as_str())
        .collect();
    let after_last = last.and_then(|l| tied.iter().find(|n| **n > l));
    after_last.or(tied.first()).map(|n| n.to_string())
}

/// The queues agents name that the rules do not have, as lines for the log: such an agent
/// is never given a conversation from them.
pub(super) fn unknown_queues(agents: &[AgentConfig], rules: &Rules) -> Vec<String> {
    agents
        .iter()
        .flat_map(|a| {
            a.queues
                .iter()
                .filter(|q| !rules.queues.contains_key(q.as_str()))
                .map(move |q| {
                    format!(
                        "agent {} serves queue {q:?}, which the rules do not have: use one of \
                         the rules' [queues.NAME] in [[agents]] queues",
                        a.name
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(counts: &[(&str, usize)]) -> Vec<(String, ConversationId)> {
        counts
            .iter()
            .flat_map(|(a, n)| {
                (0..*n).map(move |i| (a.to_string(), ConversationId(format!("{a}{i}"))))
            })
            .collect()
    }

    #[test]
    fn most_room_first_then_round_robin_among_equals() {
        let serving = vec![("a".to_string(), 1), ("b".into(), 2), ("c".into(), 3)];
        let mut assignments = Vec::new();
        let mut last: Option<String> = None;
        let mut order = Vec::new();
        while let Some(next) = choose(&serving, &assignments, last.as_deref()) {
            assignments.push((next.clone(), ConversationId(order.len().to_string())));
            order.push(next.clone());
            last = Some(next);
        }
        assert_eq!(order, ["c", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn nobody_past_capacity_and_ties_wrap_round() {
        let serving = vec![("a".to_string(), 2), ("b".into(), 2)];
        assert_eq!(choose(&serving, &owned(&[("a", 2), ("b", 2)]), None), None);
        assert_eq!(
            choose(&serving, &owned(&[("a", 1)]), Some("a")).unwrap(),
            "b"
        );
        assert_eq!(choose(&serving, &[], Some("b")).unwrap(), "a");
        assert_eq!(choose(&serving, &[], Some("zed")).unwrap(), "a");
        assert_eq!(choose(&[], &[], None), None);
    }
}
