//! What the desk keeps when a chat platform refuses a reply for good (the customer blocked
//! the bot, the chat is gone): the failure goes on the conversation, where the agent sees
//! it, and a `DeliveryFailed` event tells open consoles at once. And the widget's delivery:
//! a line from the outbox put in front of the customer's open sockets on every node.

use super::error::DeskError;
use super::inner::Inner;
use super::types::{DeskEvent, DeskEventKind};
use crate::message::{ChannelKind, ConversationId, Identity, Outbound, Speaker};
use crate::store::{Change, DeliveryFailure};
use chrono::Utc;

/// Records on conversation `id` that `text` could not be delivered on `channel` because of
/// `error`, and tells the live views.
pub(super) async fn record_failure(
    inner: &Inner,
    id: &ConversationId,
    channel: ChannelKind,
    text: &str,
    error: &str,
) -> Result<(), DeskError> {
    let Some(first) = inner.store.conversation(id).await? else {
        return Err(DeskError::NotFound);
    };
    // The same lock as the customer's turns: the record is read and written whole.
    let _guard = inner.lock_customer(&first.identity().key()).await?;
    let Some(mut record) = inner.store.conversation(id).await? else {
        return Err(DeskError::NotFound);
    };
    let now = Utc::now();
    record.delivery_failures.push(DeliveryFailure {
        channel,
        error: error.to_string(),
        text: text.to_string(),
        time: now,
    });
    record.updated = now;
    // the newest failures are what an agent needs; the record stays a bounded size
    if record.delivery_failures.len() > 20 {
        record.delivery_failures.remove(0);
    }
    inner
        .store
        .apply(Change {
            conversations: vec![record],
            ..Change::default()
        })
        .await?;
    inner.emit(
        id,
        DeskEventKind::DeliveryFailed {
            channel,
            error: error.to_string(),
        },
    );
    Ok(())
}

/// Shows one piece of an outbox record to the widget customer's open sockets, here and (on a
/// shared store) on every other node, before it returns: the courier marks the record sent
/// only after that. A customer with no socket open reads it in the history of their next
/// `welcome`.
pub(super) async fn show_line(
    inner: &Inner,
    message: &Outbound,
    text: &str,
    key: &str,
) -> Result<(), DeskError> {
    let event = DeskEvent {
        conversation_id: message.conversation_id.clone(),
        kind: DeskEventKind::Line {
            customer: Identity::new(message.channel, &message.channel_user).key(),
            agent: match &message.from {
                Speaker::Agent(name) => Some(name.clone()),
                _ => None,
            },
            text: text.to_string(),
            time: message.time,
            turn: message.turn.clone(),
            key: key.to_string(),
            survey: message.survey.clone(),
        },
    };
    super::nodes::publish_now(inner, &event).await?;
    let _ = inner.events.send(event);
    Ok(())
}
