//! What agents do to a conversation: claim a waiting one within their capacity, reply,
//! hand it back to the bot, close it. Every action runs through `locked::agent_action`,
//! which locks the conversation and the queues, applies one store change and tells the
//! views.

use chrono::Utc;

use super::copy;
use super::error::DeskError;
use super::inner::Inner;
use super::locked::{agent_action, require_agent, take};
use super::record::push_message;
use super::types::{Conversation, DeskEventKind};
use super::views;
use crate::message::{ConversationId, Speaker, Status};
use crate::store::{Change, ConversationRecord, MilestoneKind};

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
