//! What the desk keeps when a chat platform refuses a reply for good (the customer blocked
//! the bot, the chat is gone): the failure goes on the conversation, where the agent sees
//! it, and a `DeliveryFailed` event tells open consoles at once.

use super::error::DeskError;
use super::inner::Inner;
use super::types::DeskEventKind;
use crate::message::{ChannelKind, ConversationId};
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
