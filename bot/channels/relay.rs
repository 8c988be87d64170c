//! From the desk's live events to the outbox, for what is not stored in the conversation:
//! the "you are now number N" updates of customers waiting on a chat platform. Bot answers
//! and agent replies do not pass here: the store queues them in the same transaction as the
//! turn or agent action that wrote them (`Change::platform_replies`), so none is lost if the
//! process dies between the two, and none depends on this live relay keeping up.

use std::collections::HashMap;

use chrono::Utc;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::outbox::Outbox;
use crate::desk::{copy, Desk, DeskEvent, DeskEventKind};
use crate::message::{ChannelKind, ConversationId, Outbound, Speaker};

/// The text and speaker an event puts in front of the customer, if any.
pub fn customer_visible(kind: &DeskEventKind) -> Option<(String, Speaker)> {
    match kind {
        DeskEventKind::BotReply { text } => Some((text.clone(), Speaker::Bot)),
        DeskEventKind::AgentReply {
            display_name, text, ..
        } => Some((text.clone(), Speaker::Agent(display_name.clone()))),
        DeskEventKind::QueuePosition { position, .. } => {
            Some((copy::queue_position(*position), Speaker::Bot))
        }
        _ => None,
    }
}

/// Starts relaying `desk`'s events for `platforms` into `outbox`. Subscribes before it
/// returns, so no event emitted after this call is missed.
pub fn spawn(desk: Desk, outbox: Outbox, platforms: Vec<ChannelKind>) -> JoinHandle<()> {
    let events = desk.subscribe();
    tokio::spawn(run(desk, outbox, platforms, events))
}

async fn run(
    desk: Desk,
    outbox: Outbox,
    platforms: Vec<ChannelKind>,
    mut events: tokio::sync::broadcast::Receiver<DeskEvent>,
) {
    // conversation -> (platform, user) or None for conversations on other channels.
    // A conversation never changes channel, so entries never go stale.
    let mut routes: HashMap<ConversationId, Option<(ChannelKind, String)>> = HashMap::new();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::error!(
                    missed,
                    "channel relay fell behind the desk; {missed} events were not relayed"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        // Stored replies reach the outbox with their turn; only notices pass here.
        if !matches!(event.kind, DeskEventKind::QueuePosition { .. }) {
            continue;
        }
        let Some((text, from)) = customer_visible(&event.kind) else {
            continue;
        };
        if routes.len() > 100_000 {
            routes.clear();
        }
        let route = match routes.get(&event.conversation_id) {
            Some(route) => route.clone(),
            None => {
                let route = match desk.conversation(&event.conversation_id) {
                    Ok(Some(c)) if platforms.contains(&c.channel) => {
                        Some((c.channel, c.channel_user))
                    }
                    Ok(_) => None,
                    Err(e) => {
                        tracing::error!(conversation = %event.conversation_id, error = %e,
                            "cannot look up a conversation to relay its message");
                        continue;
                    }
                };
                routes.insert(event.conversation_id.clone(), route.clone());
                route
            }
        };
        let Some((channel, channel_user)) = route else {
            continue;
        };
        let message = Outbound {
            conversation_id: event.conversation_id,
            channel,
            channel_user,
            text,
            from,
            time: Utc::now(),
        };
        if let Err(e) = outbox.enqueue(message).await {
            tracing::error!(channel = %channel, error = %e, "could not queue an outbound message");
        }
    }
}
