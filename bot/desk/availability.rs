//! Agents coming and going. Agents start away: they say they are available (the console's
//! toggle, `POST /console/api/me/availability`), and stay so until they say otherwise, log
//! out, their console session ends, or the idle watcher finds them silent on a waiting
//! customer (`presence.rs` keeps who is available).
//!
//! Becoming available hands out the waiting conversations at once (`assign.rs`). Going away
//! (the toggle, a logout, an ended session) puts the agent's conversations back in their
//! queues at their old place (`locked::back_to_queue`, noted `Requeued`), for the others
//! with room. An agent found idle is only marked away: their other conversations stay
//! theirs until the idle watcher finds those waiting too.

use std::sync::Weak;
use std::time::Duration;

use chrono::Utc;

use super::assign;
use super::error::DeskError;
use super::inner::Inner;
use super::locked::{back_to_queue, locked_action, require_agent};
use super::presence::{availability, present, Availability, Presence, AVAILABLE};
use crate::message::{ConversationId, Status};

/// How often the watcher looks for ended sessions and conversations nobody was given.
const WATCH_EVERY: Duration = Duration::from_secs(3);

/// `agent` says they are available (for as long as `session` lasts, when given) or away.
/// Available: the waiting conversations are handed out at once. Away: their conversations
/// go back to their queues, for the others.
pub(super) async fn set_availability(
    inner: &Inner,
    agent: &str,
    available: bool,
    session: Option<&str>,
) -> Result<Availability, DeskError> {
    require_agent(inner, agent)?;
    let key = format!("{AVAILABLE}{agent}");
    if !available {
        let handed_back = go_away(inner, agent, "said away").await?;
        return Ok(Availability {
            handed_back,
            ..availability(inner, agent).await?
        });
    }
    let presence = Presence {
        since: present(inner)
            .await?
            .remove(agent)
            .map_or_else(Utc::now, |p| p.since),
        session: session.map(str::to_string),
    };
    let value = serde_json::to_string(&presence).expect("a presence always serializes");
    inner.store.set_setting(&key, Some(&value)).await?;
    inner.store.flush().await?;
    tracing::info!(agent, "agent available");
    assign::room_freed(inner).await;
    availability(inner, agent).await
}

/// `agent` is away: no more conversations for them, and the ones they own go back to their
/// queues (at their old place) for the agents with room. Returns those conversations.
pub(super) async fn go_away(
    inner: &Inner,
    agent: &str,
    why: &str,
) -> Result<Vec<ConversationId>, DeskError> {
    inner
        .store
        .set_setting(&format!("{AVAILABLE}{agent}"), None)
        .await?;
    inner.store.flush().await?;
    let mut moved = Vec::new();
    // Twice: a hand-out that read the agent as available just before may land meanwhile.
    for _ in 0..2 {
        let owned: Vec<ConversationId> = inner
            .store
            .assignments()
            .await?
            .into_iter()
            .filter(|(a, id)| a == agent && !moved.contains(id))
            .map(|(_, id)| id)
            .collect();
        for id in owned {
            let now = Utc::now();
            let result = locked_action(inner, &id, |_, a| {
                let r = a.record;
                // Checked again under the locks: it may have just been closed.
                if r.status != Status::WithAgent || r.assigned_agent.as_deref() != Some(agent) {
                    return Err(DeskError::Conflict("no longer the agent's".into()));
                }
                Ok(Some(back_to_queue(
                    r, a.change, a.entries, a.events, agent, now,
                )))
            })
            .await;
            match result {
                Ok(_) => moved.push(id),
                Err(DeskError::Conflict(_) | DeskError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
    }
    tracing::info!(agent, why, handed_back = moved.len(), "agent away");
    if !moved.is_empty() {
        assign::room_freed(inner).await;
    }
    Ok(moved)
}

/// The idle watcher took a conversation from `agent`, who is silent: they are marked away
/// (their other conversations stay theirs), and the conversation goes to someone with room.
pub(super) async fn idle_agent(inner: &Inner, agent: &str) {
    let key = format!("{AVAILABLE}{agent}");
    let was = match present(inner).await {
        Ok(p) => p.contains_key(agent),
        Err(e) => {
            tracing::warn!(agent, error = %e, "cannot read availability");
            false
        }
    };
    if was {
        match inner.store.set_setting(&key, None).await {
            Ok(()) => tracing::info!(agent, "idle agent marked away"),
            Err(e) => tracing::warn!(agent, error = %e, "cannot mark an idle agent away"),
        }
    }
    assign::room_freed(inner).await;
}

/// Agents whose console session ended (logged out, expired) go away; then the waiting
/// conversations nobody was given yet are handed out. Returns who went away.
pub(super) async fn sweep(inner: &Inner) -> Result<Vec<String>, DeskError> {
    let now = Utc::now();
    let mut gone = Vec::new();
    for (agent, presence) in present(inner).await? {
        let Some(sid) = presence.session else {
            continue;
        };
        let live = inner
            .store
            .session(&sid)
            .await?
            .is_some_and(|s| s.agent == agent && s.expires > now);
        if !live {
            go_away(inner, &agent, "console session ended").await?;
            gone.push(agent);
        }
    }
    if inner.auto_assign && !present(inner).await?.is_empty() {
        assign::serve_all(inner).await?;
    }
    Ok(gone)
}

/// Background task: [`sweep`] every few seconds on the node holding the `assign` lease,
/// until the desk is dropped.
pub(super) fn spawn_watch(desk: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            let Some(inner) = desk.upgrade() else { break };
            let node = inner.store.node().to_string();
            match inner
                .store
                .take_lease("assign", &node, WATCH_EVERY * 3)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the assignment lease; skipping this tick");
                    continue;
                }
            }
            if let Err(e) = sweep(&inner).await {
                tracing::warn!(error = %e, "availability check failed");
            }
        }
    });
}
