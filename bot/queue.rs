//! Human queues: order (priority, then waiting time), positions told to customers, agents
//! claiming within their capacity, replying, handing back to the bot and closing, and the
//! watcher that takes a conversation back from an agent who stays idle too long.

use crate::desk::turn::push_message;
use crate::desk::{Desk, DeskError, DeskEventKind, Inner, QueueEntryView, QueueView};
use crate::message::{ConversationId, Speaker, Status};
use crate::store::{Change, ConversationRecord, QueueEntry};
use chrono::{DateTime, Utc};
use std::sync::Weak;
use std::time::Duration;

/// Entries of `queue` in service order: higher priority first, then longer waiting.
pub fn ordered<'a>(entries: &'a [QueueEntry], queue: &str) -> Vec<&'a QueueEntry> {
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
pub fn position(entries: &[QueueEntry], queue: &str, id: &ConversationId) -> usize {
    ordered(entries, queue)
        .iter()
        .position(|e| &e.conversation_id == id)
        .map_or(0, |p| p + 1)
}

/// Every conversation of `queue` with its position.
pub fn positions(entries: &[QueueEntry], queue: &str) -> Vec<(ConversationId, usize)> {
    ordered(entries, queue)
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e.conversation_id.clone(), i + 1))
        .collect()
}

pub fn queued_text(position: usize) -> String {
    format!(
        "I'm passing you to a person from our team; they will see everything we've written so far. \
         You are number {position} in the queue."
    )
}

pub fn still_waiting_text(position: usize) -> String {
    format!(
        "Thanks, I've added that for our team. You are number {position} in the queue; someone \
         will be with you as soon as possible."
    )
}

/// Tells each waiting customer their (new) position.
pub(crate) fn announce(inner: &Inner, queue: &str, positions: Vec<(ConversationId, usize)>) {
    for (id, position) in positions {
        inner.emit(
            &id,
            DeskEventKind::QueuePosition {
                queue: queue.to_string(),
                position,
            },
        );
    }
}

/// The queues as the console shows them, with waiting times against each SLA.
pub(crate) fn views(inner: &Inner, now: DateTime<Utc>) -> Result<Vec<QueueView>, DeskError> {
    let entries = inner.store.queue_entries()?;
    let mut names: Vec<String> = inner.rules.queues.keys().cloned().collect();
    for e in &entries {
        if !names.contains(&e.queue) {
            names.push(e.queue.clone());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let spec = inner.rules.queues.get(&name);
            let sla_secs = spec.map_or(0, |s| s.sla_secs);
            let list = ordered(&entries, &name)
                .into_iter()
                .enumerate()
                .map(|(i, e)| {
                    let record = inner.store.conversation(&e.conversation_id)?;
                    let sentiment = record.as_ref().map_or(0.0, recent_negativity);
                    let waiting_secs = (now - e.enqueued_at).num_seconds().max(0) as u64;
                    Ok(QueueEntryView {
                        conversation_id: e.conversation_id.clone(),
                        customer: e.customer.clone(),
                        channel: e.channel,
                        priority: e.priority,
                        reasons: e.reasons.clone(),
                        sentiment,
                        waiting_secs,
                        position: i + 1,
                        sla_breached: sla_secs > 0 && waiting_secs > sla_secs,
                    })
                })
                .collect::<Result<Vec<_>, DeskError>>()?;
            Ok(QueueView {
                name,
                description: spec.and_then(|s| s.description.clone()),
                sla_secs,
                entries: list,
            })
        })
        .collect()
}

/// Mean negative probability of the last three customer messages.
fn recent_negativity(r: &ConversationRecord) -> f32 {
    let t = &r.sentiment_trajectory;
    let last = &t[t.len().saturating_sub(3)..];
    if last.is_empty() {
        0.0
    } else {
        last.iter().sum::<f32>() / last.len() as f32
    }
}

impl Desk {
    /// Loads a conversation and locks it (and the queues) for an agent's action.
    async fn agent_action<F>(
        &self,
        agent: &str,
        id: &ConversationId,
        act: F,
    ) -> Result<ConversationRecord, DeskError>
    where
        F: FnOnce(
            &Inner,
            &mut ConversationRecord,
            &mut Change,
            &mut Vec<DeskEventKind>,
            &[QueueEntry],
        ) -> Result<Option<String>, DeskError>,
    {
        let inner = self.inner();
        if !inner.agents.contains_key(agent) {
            return Err(DeskError::Forbidden(format!(
                "{agent} is not an agent of this desk"
            )));
        }
        let first = inner.store.conversation(id)?.ok_or(DeskError::NotFound)?;
        let _conversation_guard = inner.stripe(&first.identity().key()).lock().await;
        let _queue_guard = inner.queue_lock.lock().await;
        let mut record = inner.store.conversation(id)?.ok_or(DeskError::NotFound)?;
        let entries = inner.store.queue_entries()?;
        let mut change = Change::default();
        let mut events = Vec::new();
        let touched_queue = act(inner, &mut record, &mut change, &mut events, &entries)?;
        record.updated = Utc::now();
        change.conversations.push(record.clone());
        // Positions after the change, for the customers still waiting.
        let mut after = entries.clone();
        after.retain(|e| {
            !change
                .dequeue
                .iter()
                .any(|(q, c)| &e.queue == q && &e.conversation_id == c)
        });
        after.extend(change.enqueue.iter().cloned());
        inner.store.apply(change)?;
        inner.store.flush().await?;
        for kind in events {
            inner.emit(id, kind);
        }
        if let Some(q) = touched_queue {
            announce(inner, &q, positions(&after, &q));
        }
        Ok(record)
    }

    /// An agent takes a waiting conversation, if they have room for one more.
    pub async fn claim(
        &self,
        agent: &str,
        id: &ConversationId,
    ) -> Result<crate::desk::Conversation, DeskError> {
        let agent_name = agent.to_string();
        self.agent_action(agent, id, |inner, r, change, events, _| {
            if r.status != Status::Queued {
                return Err(DeskError::Conflict(match &r.assigned_agent {
                    Some(a) => format!("the conversation is already with {a}"),
                    None => format!("the conversation is not waiting (it is {})", r.status),
                }));
            }
            let config = &inner.agents[&agent_name];
            let active = inner
                .store
                .assignments()?
                .iter()
                .filter(|(a, _)| a == &agent_name)
                .count();
            if active >= config.capacity {
                return Err(DeskError::Conflict(format!(
                    "{agent_name} already has {active} conversations (capacity {})",
                    config.capacity
                )));
            }
            let queue = r.queue.clone().unwrap_or_default();
            change.dequeue.push((queue.clone(), r.id.clone()));
            change.assign.push((agent_name.clone(), r.id.clone()));
            r.status = Status::WithAgent;
            r.assigned_agent = Some(agent_name.clone());
            r.last_agent_at = Some(Utc::now());
            let hello = format!(
                "{} from our team has joined the conversation.",
                config.display()
            );
            push_message(r, change, Speaker::Bot, &hello, Utc::now(), None);
            events.push(DeskEventKind::StatusChanged {
                status: Status::WithAgent,
            });
            events.push(DeskEventKind::BotReply { text: hello });
            Ok(Some(queue))
        })
        .await?;
        self.conversation(id)?.ok_or(DeskError::NotFound)
    }

    /// The owning agent writes to the customer.
    pub async fn agent_reply(
        &self,
        agent: &str,
        id: &ConversationId,
        text: &str,
    ) -> Result<(), DeskError> {
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(DeskError::Invalid("the reply is empty".into()));
        }
        let agent_name = agent.to_string();
        self.agent_action(agent, id, |inner, r, change, events, _| {
            require_owner(r, &agent_name)?;
            r.last_agent_at = Some(Utc::now());
            push_message(
                r,
                change,
                Speaker::Agent(agent_name.clone()),
                &text,
                Utc::now(),
                None,
            );
            events.push(DeskEventKind::AgentReply {
                agent: agent_name.clone(),
                display_name: inner.agents[&agent_name].display().to_string(),
                text: text.clone(),
            });
            Ok(None)
        })
        .await
        .map(|_| ())
    }

    /// The owning agent gives the conversation back to the bot.
    pub async fn hand_back(&self, agent: &str, id: &ConversationId) -> Result<(), DeskError> {
        let agent_name = agent.to_string();
        self.agent_action(agent, id, |inner, r, change, events, _| {
            require_owner(r, &agent_name)?;
            change.unassign.push((agent_name.clone(), r.id.clone()));
            r.status = Status::Bot;
            r.assigned_agent = None;
            r.queued_since = None;
            r.pending = None;
            r.offered_human = false;
            r.unresolved_turns = 0;
            let text = format!(
                "{} handed you back to the assistant. Ask me anything about your orders, or say \
                 \"agent\" to talk to a person again.",
                inner.agents[&agent_name].display()
            );
            push_message(r, change, Speaker::Bot, &text, Utc::now(), None);
            events.push(DeskEventKind::StatusChanged {
                status: Status::Bot,
            });
            events.push(DeskEventKind::BotReply { text });
            Ok(None)
        })
        .await
        .map(|_| ())
    }

    /// Ends the conversation (one the agent owns, or one still waiting in a queue). The
    /// customer's next message starts a new conversation.
    pub async fn close(&self, agent: &str, id: &ConversationId) -> Result<(), DeskError> {
        let agent_name = agent.to_string();
        self.agent_action(agent, id, |_, r, change, events, _| {
            let mut touched = None;
            match r.status {
                Status::WithAgent => {
                    require_owner(r, &agent_name)?;
                    change.unassign.push((agent_name.clone(), r.id.clone()));
                }
                Status::Queued => {
                    let q = r.queue.clone().unwrap_or_default();
                    change.dequeue.push((q.clone(), r.id.clone()));
                    touched = Some(q);
                }
                Status::Bot => {}
                Status::Closed => {
                    return Err(DeskError::Conflict(
                        "the conversation is already closed".into(),
                    ))
                }
            }
            r.status = Status::Closed;
            r.assigned_agent = None;
            change.open.push((r.identity(), None));
            let text =
                "This conversation is now closed. Thanks for contacting us! Write again any time.";
            push_message(r, change, Speaker::Bot, text, Utc::now(), None);
            events.push(DeskEventKind::BotReply { text: text.into() });
            events.push(DeskEventKind::StatusChanged {
                status: Status::Closed,
            });
            Ok(touched)
        })
        .await
        .map(|_| ())
    }

    /// Puts back in their queue the conversations whose agent has not acted for
    /// `idle` while the customer waits for an answer. Returns the conversations moved.
    pub async fn reassign_idle(
        &self,
        idle: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ConversationId>, DeskError> {
        let limit = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
        let mut moved = Vec::new();
        for (agent, id) in self.inner().store.assignments()? {
            let Some(r) = self.inner().store.conversation(&id)? else {
                continue;
            };
            if !is_idle(&r, limit, now) {
                continue;
            }
            let result = self
                .agent_action(&agent, &id, |_, r, change, events, entries| {
                    // Checked again under the locks: the agent may have just answered.
                    if r.assigned_agent.as_deref() != Some(agent.as_str()) || !is_idle(r, limit, now) {
                        return Ok(None);
                    }
                    let queue = r.queue.clone().unwrap_or_else(|| "general".into());
                    change.unassign.push((agent.clone(), r.id.clone()));
                    let entry = QueueEntry {
                        queue: queue.clone(),
                        conversation_id: r.id.clone(),
                        customer: r.customer.clone(),
                        channel: r.channel,
                        priority: r.priority,
                        enqueued_at: r.queued_since.unwrap_or(now),
                        reasons: r.escalation.clone(),
                    };
                    let mut after = entries.to_vec();
                    after.push(entry.clone());
                    change.enqueue.push(entry);
                    r.status = Status::Queued;
                    r.assigned_agent = None;
                    let text = format!(
                        "Sorry for the wait: I'm finding another person from our team for you. You are number {} in the queue.",
                        position(&after, &queue, &r.id)
                    );
                    push_message(r, change, Speaker::Bot, &text, now, None);
                    events.push(DeskEventKind::StatusChanged { status: Status::Queued });
                    events.push(DeskEventKind::BotReply { text });
                    Ok(Some(queue))
                })
                .await?;
            if result.status == Status::Queued {
                tracing::info!(agent, conversation = %id, "idle agent: conversation back in its queue");
                moved.push(id);
            }
        }
        Ok(moved)
    }
}

fn require_owner(r: &ConversationRecord, agent: &str) -> Result<(), DeskError> {
    match (&r.status, &r.assigned_agent) {
        (Status::WithAgent, Some(a)) if a == agent => Ok(()),
        (Status::WithAgent, Some(a)) => Err(DeskError::Forbidden(format!(
            "the conversation belongs to {a}"
        ))),
        (status, _) => Err(DeskError::Conflict(format!(
            "the conversation is {status}, not with an agent"
        ))),
    }
}

/// The customer wrote after the agent's last action, and that action is older than `limit`.
fn is_idle(r: &ConversationRecord, limit: chrono::Duration, now: DateTime<Utc>) -> bool {
    let Some(last_agent) = r.last_agent_at else {
        return false;
    };
    r.status == Status::WithAgent && r.last_customer_at > last_agent && now - last_agent >= limit
}

/// Background task: checks for idle agents a few times per limit, until the desk is dropped.
pub(crate) fn spawn_idle_watch(desk: Weak<Inner>, idle_secs: u64) {
    let idle = Duration::from_secs(idle_secs);
    let every = Duration::from_secs((idle_secs / 4).clamp(1, 30));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(inner) = desk.upgrade() else { break };
            let desk = Desk::from_inner(inner);
            if let Err(e) = desk.reassign_idle(idle, Utc::now()).await {
                tracing::warn!(error = %e, "idle-agent check failed");
            }
        }
    });
}
