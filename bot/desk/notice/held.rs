//! Notices held for the end of quiet hours, released on the conversation they were held on.

use chrono::{DateTime, Utc};

use super::{held_of, say, Held, HELD_FOR_AT_MOST, HELD_SLOT};
use crate::desk::error::DeskError;
use crate::desk::inner::Inner;
use crate::desk::types::DeskEventKind;
use crate::desk::Desk;
use crate::message::{ConversationId, Identity};
use crate::store::Change;

/// Sends the held notices that are due by `now` (all of them with `everything`: quiet
/// hours are over), each on the conversation it was held on, unless the customer opted out
/// or was blocked in the meantime. Every node may run it: each conversation is released
/// under its lock, once. Returns how many were sent.
pub async fn release_held(
    desk: &Desk,
    now: DateTime<Utc>,
    everything: bool,
) -> Result<usize, DeskError> {
    let inner = &desk.inner;
    let candidates = inner
        .store
        .conversations_since(now - HELD_FOR_AT_MOST, 20_000)
        .await?;
    let mut sent = 0;
    for r in candidates
        .iter()
        .filter(|r| r.slots.contains_key(HELD_SLOT))
    {
        match release_one(inner, &r.id, &r.identity(), now, everything).await {
            Ok(n) => sent += n,
            Err(e) => {
                tracing::warn!(conversation = %r.id, error = %e, "held notices not released; tried again later")
            }
        }
    }
    Ok(sent)
}

async fn release_one(
    inner: &Inner,
    id: &ConversationId,
    identity: &Identity,
    now: DateTime<Utc>,
    everything: bool,
) -> Result<usize, DeskError> {
    let _guard = inner.lock_customer(&identity.key()).await?;
    let Some(mut record) = inner.store.conversation(id).await? else {
        return Ok(0);
    };
    let (due, later): (Vec<Held>, Vec<Held>) = held_of(&record)
        .into_iter()
        .partition(|h| everything || h.until <= now);
    if due.is_empty() {
        return Ok(0);
    }
    let customer = inner.store.customer(&record.customer).await?;
    let mut change = Change::default();
    let mut said = Vec::new();
    for h in due {
        let wanted = customer.as_ref().is_some_and(|c| {
            c.blocked.is_none()
                && match h.promotional {
                    true => c.notices.offers,
                    false => !c.notices.opted_out,
                }
        });
        if wanted {
            say(&mut record, &mut change, &h.text, h.context, now);
            said.push(h.text);
        }
    }
    if later.is_empty() {
        record.slots.remove(HELD_SLOT);
    } else {
        record.slots.insert(
            HELD_SLOT.into(),
            serde_json::to_string(&later).expect("held notices serialize"),
        );
    }
    change.conversations.push(record);
    inner.store.apply(change).await?;
    inner.store.flush().await?;
    for text in &said {
        inner.emit(id, DeskEventKind::BotReply { text: text.clone() });
    }
    tracing::info!(conversation = %id, sent = said.len(), "held notices released");
    Ok(said.len())
}
