//! What agents do to a conversation: claim a waiting one within their capacity, reply,
//! hand it back to the bot, close it. Every action runs through [`agent_action`], which
//! locks the conversation and the queues, applies one store change and tells the views.

use chrono::Utc;

use super::copy;
use super::error::DeskError;
use super::inner::Inner;
use super::queue::positions;
use super::record::push_message;
use super::types::{Conversation, DeskEventKind};
use super::views;
use crate::message::{ConversationId, Speaker, Status};
use crate::store::{Change, ConversationRecord, Customer, MilestoneKind, QueueEntry};

/// What an action may change: the conversation, the store change that goes with it, the
/// events to tell once it is stored; it sees the queues as they were before.
pub(super) struct Action<'a> {
    pub(super) record: &'a mut ConversationRecord,
    pub(super) change: &'a mut Change,
    pub(super) events: &'a mut Vec<DeskEventKind>,
    pub(super) entries: &'a [QueueEntry],
    /// Every (agent, conversation) claim, read under the queues' lock.
    pub(super) assignments: &'a [(String, ConversationId)],
    /// The conversation's customer, read under its lock.
    pub(super) customer: Option<&'a Customer>,
}

/// Loads conversation `id` and locks it (and the queues) for `agent`'s action `act`, then
/// stores and flushes the change, tells the live views, and gives the queue `act` touched
/// (if any) its new positions. Returns the conversation as stored.
pub(super) async fn agent_action<F>(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
    act: F,
) -> Result<ConversationRecord, DeskError>
where
    F: FnOnce(&Inner, Action<'_>) -> Result<Option<String>, DeskError>,
{
    require_agent(inner, agent)?;
    locked_action(inner, id, act).await
}

/// `agent` is one of this desk's agents.
fn require_agent(inner: &Inner, agent: &str) -> Result<(), DeskError> {
    match inner.agents.contains_key(agent) {
        true => Ok(()),
        false => Err(DeskError::Forbidden(format!(
            "{agent} is not an agent of this desk"
        ))),
    }
}

/// [`agent_action`] for the desk itself (a timer): the same locks, store, flush and news.
pub(super) async fn locked_action<F>(
    inner: &Inner,
    id: &ConversationId,
    act: F,
) -> Result<ConversationRecord, DeskError>
where
    F: FnOnce(&Inner, Action<'_>) -> Result<Option<String>, DeskError>,
{
    let first = inner
        .store
        .conversation(id)
        .await?
        .ok_or(DeskError::NotFound)?;
    // An agent acts: an LLM answer still being written would talk over them.
    inner.cancel_llm(id);
    let _conversation_guard = inner.lock_customer(&first.identity().key()).await?;
    let _queue_guard = inner.lock_queues().await?;
    let mut record = inner
        .store
        .conversation(id)
        .await?
        .ok_or(DeskError::NotFound)?;
    let entries = inner.store.queue_entries().await?;
    let assignments = inner.store.assignments().await?;
    let customer = inner.store.customer(&record.customer).await?;
    let mut change = Change::default();
    let mut events = Vec::new();
    let touched_queue = act(
        inner,
        Action {
            record: &mut record,
            change: &mut change,
            events: &mut events,
            entries: &entries,
            assignments: &assignments,
            customer: customer.as_ref(),
        },
    )?;
    record.updated = Utc::now();
    change.conversations.push(record.clone());
    // Positions after the change, for the customers still waiting.
    let mut after = entries;
    after.retain(|e| {
        !change
            .dequeue
            .iter()
            .any(|(q, c)| &e.queue == q && &e.conversation_id == c)
    });
    after.extend(change.enqueue.iter().cloned());
    let moved = touched_queue.as_ref().map(|q| (q, positions(&after, q)));
    if let Some((_, moved)) = &moved {
        let notices = inner.position_notices(moved).await?;
        change.outbox.extend(notices);
    }
    inner.store.apply(change).await?;
    inner.store.flush().await?;
    for kind in events {
        inner.emit(id, kind);
    }
    if let Some((q, moved)) = moved {
        inner.announce(q, moved);
    }
    Ok(record)
}

/// An agent takes a waiting conversation, if they have room for one more.
pub(super) async fn claim(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
) -> Result<Conversation, DeskError> {
    agent_action(inner, agent, id, |inner, a| take(inner, a, agent, false)).await?;
    views::conversation(inner, id)
        .await?
        .ok_or(DeskError::NotFound)
}

/// `agent` takes the waiting conversation of `a` if they have room (the one path of a claim
/// and of auto-assignment, `auto`, under the same locks). Returns the queue it left.
pub(super) fn take(
    inner: &Inner,
    a: Action<'_>,
    agent: &str,
    auto: bool,
) -> Result<Option<String>, DeskError> {
    let r = a.record;
    if r.status != Status::Queued {
        return Err(DeskError::Conflict(match &r.assigned_agent {
            Some(owner) => format!("the conversation is already with {owner}"),
            None => format!("the conversation is not waiting (it is {})", r.status),
        }));
    }
    let config = &inner.agents[agent];
    let active = a
        .assignments
        .iter()
        .filter(|(name, _)| name == agent)
        .count();
    if active >= config.capacity {
        return Err(DeskError::Conflict(format!(
            "{agent} already has {active} conversations (capacity {})",
            config.capacity
        )));
    }
    let queue = r.queue.clone().unwrap_or_default();
    a.change.dequeue.push((queue.clone(), r.id.clone()));
    a.change.assign.push((agent.to_string(), r.id.clone()));
    r.status = Status::WithAgent;
    r.assigned_agent = Some(agent.to_string());
    r.last_agent_at = Some(Utc::now());
    r.note(
        Utc::now(),
        MilestoneKind::Claimed {
            agent: agent.to_string(),
            auto,
        },
    );
    let hello = copy::agent_joined(config.display());
    push_message(r, a.change, Speaker::Bot, &hello, Utc::now(), None);
    a.events.push(DeskEventKind::StatusChanged {
        status: Status::WithAgent,
    });
    a.events.push(DeskEventKind::BotReply { text: hello });
    Ok(Some(queue))
}

/// The owning agent writes to the customer.
pub(super) async fn agent_reply(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
    text: &str,
) -> Result<(), DeskError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DeskError::Invalid("the reply is empty".into()));
    }
    agent_action(inner, agent, id, |inner, a| {
        let r = a.record;
        require_owner(r, agent)?;
        r.last_agent_at = Some(Utc::now());
        let from = Speaker::Agent(agent.to_string());
        push_message(r, a.change, from, text, Utc::now(), None);
        a.change
            .display_names
            .push((agent.to_string(), inner.agents[agent].display().to_string()));
        a.events.push(DeskEventKind::AgentReply {
            agent: agent.to_string(),
            display_name: inner.agents[agent].display().to_string(),
            text: text.to_string(),
        });
        Ok(None)
    })
    .await
    .map(|_| ())
}

/// The owning agent gives the conversation back to the bot.
pub(super) async fn hand_back(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
) -> Result<(), DeskError> {
    agent_action(inner, agent, id, |inner, a| {
        let r = a.record;
        require_owner(r, agent)?;
        a.change.unassign.push((agent.to_string(), r.id.clone()));
        r.status = Status::Bot;
        r.assigned_agent = None;
        r.queued_since = None;
        r.pending = None;
        r.offered_human = false;
        r.unresolved_turns = 0;
        r.note(
            Utc::now(),
            MilestoneKind::HandedBack {
                agent: agent.to_string(),
            },
        );
        let text = copy::handed_back(inner.agents[agent].display());
        push_message(r, a.change, Speaker::Bot, &text, Utc::now(), None);
        a.events.push(DeskEventKind::StatusChanged {
            status: Status::Bot,
        });
        a.events.push(DeskEventKind::BotReply { text });
        Ok(None)
    })
    .await?;
    super::assign::room_freed(inner).await;
    Ok(())
}

/// The owning agent typed what the customer told them about order `order` (its email
/// address or postcode) and the shop confirms it: the conversation may then speak about that
/// order (after a hand back, say), exactly as after the bot's own check. An agent's word alone
/// proves nothing: a wrong proof counts against the order like any other guess. Both
/// outcomes are audited (agent, customer hash, time) and a confirmation is shown in the
/// transcript.
pub(super) async fn verify_customer(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
    order: &str,
    proof: &str,
) -> Result<(), DeskError> {
    let (order, proof) = (order.trim(), proof.trim());
    if order.is_empty()
        || order.chars().count() > 64
        || proof.is_empty()
        || proof.chars().count() > 200
    {
        return Err(DeskError::Invalid(
            "give the order number and the email address or postcode on it, as the customer \
             told you (the shop checks them)"
                .into(),
        ));
    }
    require_agent(inner, agent)?;
    // Only the owner asks the shop anything about this conversation's customer.
    let first = inner
        .store
        .conversation(id)
        .await?
        .ok_or(DeskError::NotFound)?;
    require_owner(&first, agent)?;
    let verdict = inner
        .dialogue
        .check_order(order, proof)
        .await
        .map_err(|e| DeskError::Unavailable(super::error::Unavailable::Shop(e.to_string())))?;
    let audit = |action: &str| crate::store::AuditLine {
        time: Utc::now(),
        action: action.into(),
        subject: crate::store::subject_hash(&first.customer),
        actor: format!("agent:{agent}"),
    };
    if verdict != super::dialogue::CheckVerdict::Confirmed {
        tracing::info!(agent, conversation = %id, ?verdict, "agent's check of an order refused");
        let change = Change {
            audit: vec![audit("verify order: refused by the shop")],
            ..Change::default()
        };
        inner.store.apply(change).await?;
        inner.store.flush().await?;
        return Err(match verdict {
            super::dialogue::CheckVerdict::Paused => DeskError::Conflict(format!(
                "checks of order {order} are paused after too many wrong answers today: the \
                 owner can sign in on the shop's website (a sign-in link was emailed to them)"
            )),
            _ => DeskError::Invalid(format!(
                "the shop does not confirm that email address or postcode for order {order}: \
                 ask the customer again (each wrong answer counts against the order)"
            )),
        });
    }
    let display = inner
        .agents
        .get(agent)
        .and_then(|a| a.display_name.clone())
        .unwrap_or_else(|| agent.to_string());
    agent_action(inner, agent, id, |_, a| {
        let r = a.record;
        require_owner(r, agent)?;
        r.access.level = crate::store::IdentityLevel::AgentVerified;
        if !r.access.verified_orders.iter().any(|n| n == order) {
            r.access.verified_orders.push(order.to_string());
        }
        r.access.checking = None;
        let now = Utc::now();
        r.last_agent_at = Some(now);
        let text = copy::agent_verified_order(&display, order);
        push_message(r, a.change, Speaker::Bot, &text, now, None);
        a.events.push(DeskEventKind::BotReply { text });
        a.change.audit.push(audit("verify order: confirmed by the shop"));
        tracing::info!(agent, conversation = %r.id, "order checked by an agent, confirmed by the shop");
        Ok(None)
    })
    .await
    .map(|_| ())
}

/// Ends the conversation (one the agent owns, or one still waiting in a queue). The
/// customer's next message starts a new conversation.
pub(super) async fn close(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
) -> Result<(), DeskError> {
    let closed = agent_action(inner, agent, id, |inner, a| {
        let r = a.record;
        let mut touched = None;
        match r.status {
            Status::WithAgent => {
                require_owner(r, agent)?;
                a.change.unassign.push((agent.to_string(), r.id.clone()));
            }
            Status::Queued => {
                let q = r.queue.clone().unwrap_or_default();
                a.change.dequeue.push((q.clone(), r.id.clone()));
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
        r.note(
            Utc::now(),
            MilestoneKind::Closed {
                by: format!("agent:{agent}"),
            },
        );
        // With a reopen window the identity keeps pointing here: a message soon after
        // reopens this conversation (see `turn::open_conversation`).
        if inner.reopen_within.is_zero() {
            a.change.open.push((r.identity(), None));
        }
        let text = copy::closed();
        push_message(r, a.change, Speaker::Bot, &text, Utc::now(), None);
        super::survey::ask_on_close(inner, r, a.change, Utc::now());
        a.events.push(DeskEventKind::BotReply { text });
        a.events.push(DeskEventKind::StatusChanged {
            status: Status::Closed,
        });
        Ok(touched)
    })
    .await?;
    super::survey::remember_asked(inner, &closed).await;
    super::assign::room_freed(inner).await;
    Ok(())
}

/// Blocks the customer of conversation `id` (any agent may, e.g. against abuse or a flood):
/// the conversation closes, leaves its queue, and the customer's later messages on any of
/// their channels are refused until an agent unblocks them.
pub(super) async fn block_customer(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
    reason: &str,
) -> Result<String, DeskError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(DeskError::Invalid(
            "say why the customer is blocked (1-500 characters): other agents will read it".into(),
        ));
    }
    let mut blocked_id = String::new();
    agent_action(inner, agent, id, |_, a| {
        let r = a.record;
        let mut customer = a.customer.cloned().ok_or(DeskError::NotFound)?;
        let mut touched = None;
        match r.status {
            Status::WithAgent => {
                if let Some(owner) = r.assigned_agent.clone() {
                    a.change.unassign.push((owner, r.id.clone()));
                }
            }
            Status::Queued => {
                let q = r.queue.clone().unwrap_or_default();
                a.change.dequeue.push((q.clone(), r.id.clone()));
                touched = Some(q);
            }
            Status::Bot | Status::Closed => {}
        }
        if r.status != Status::Closed {
            r.status = Status::Closed;
            r.assigned_agent = None;
            r.note(
                Utc::now(),
                MilestoneKind::Closed {
                    by: format!("blocked:{agent}"),
                },
            );
            a.change.open.push((r.identity(), None));
            let text = copy::blocked();
            push_message(r, a.change, Speaker::Bot, &text, Utc::now(), None);
            a.events.push(DeskEventKind::BotReply { text });
            a.events.push(DeskEventKind::StatusChanged {
                status: Status::Closed,
            });
        }
        customer.blocked = Some(crate::store::Block {
            by: agent.to_string(),
            at: Utc::now(),
            reason: reason.to_string(),
        });
        blocked_id = customer.id.clone();
        a.change.customers.push(customer);
        tracing::warn!(agent, conversation = %r.id, "customer blocked");
        Ok(touched)
    })
    .await?;
    Ok(blocked_id)
}

/// Lifts a block: the customer may write again.
pub(super) async fn unblock_customer(
    inner: &Inner,
    agent: &str,
    customer_id: &str,
) -> Result<(), DeskError> {
    if !inner.agents.contains_key(agent) {
        return Err(DeskError::Forbidden(format!(
            "{agent} is not an agent of this desk"
        )));
    }
    let mut customer = inner
        .store
        .customer(customer_id)
        .await?
        .ok_or(DeskError::NotFound)?;
    let Some(first) = customer.identities.first().cloned() else {
        return Err(DeskError::NotFound);
    };
    let _guard = inner.lock_customer(&first.key()).await?;
    if let Some(fresh) = inner.store.customer(customer_id).await? {
        customer = fresh;
    }
    if customer.blocked.take().is_none() {
        return Err(DeskError::Conflict("the customer is not blocked".into()));
    }
    inner
        .store
        .apply(crate::store::Change {
            customers: vec![customer],
            ..Default::default()
        })
        .await?;
    inner.store.flush().await?;
    tracing::info!(agent, customer = customer_id, "customer unblocked");
    Ok(())
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
