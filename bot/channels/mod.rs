//! Chat platforms behind one interface. An adapter turns platform events into `Inbound`
//! for [`Intake::receive`], and puts `Outbound` messages in front of the customer again; the
//! desk and the router never see a platform type.
//!
//! Inbound: each adapter hands the message to the intake (the one door of every channel:
//! link commands, the desk, metrics) and does nothing with the `Turn` but log it; answers
//! reach the customer through `relay` (desk events -> outbox), so a bot answer and an agent's
//! reply an hour later take the same durable path. Only answers that belong to no
//! conversation (a `/link` command's) are put in the outbox by the adapter itself
//! ([`receive`]).
//! Outbound: `Channel::deliver` is what the outbox calls; `Courier` is the piece-level form
//! (already formatted and split per platform) that `outbox` drives with retries.
//!
//! State (outbox, failed deliveries, Discord routes) lives in trees of the one store
//! (`crate::store::ChannelTree`); [`migrate`] carries over the older `DATA/channels` database.

pub mod discord;
pub mod format;
pub mod health;
pub mod migrate;
pub mod outbox;
pub mod platforms;
pub mod relay;
pub mod telegram;
mod telegram_send;

use chrono::Utc;
use futures::future::BoxFuture;

use crate::desk::DeskError;
use crate::intake::{Intake, Received};
use crate::message::{ChannelKind, Inbound, Outbound, Speaker};

pub use outbox::{Courier, DeliveryError, Outbox, OutboxError};

/// One platform's delivery of a whole outbound message. Errors say whether to retry
/// (`Retryable`), wait first (`RateLimited { retry_after }`) or give up (`Permanent`).
pub trait Channel: Send + Sync + 'static {
    fn kind(&self) -> ChannelKind;
    fn deliver<'a>(&'a self, message: &'a Outbound) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// Every courier is a channel: the message is formatted and split for the platform and the
/// pieces sent in order; the first failure stops it (the outbox remembers progress itself).
impl<C: Courier> Channel for C {
    fn kind(&self) -> ChannelKind {
        Courier::kind(self)
    }

    fn deliver<'a>(&'a self, message: &'a Outbound) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            // one delivery, not retried here: a key of its own for each piece
            let base = uuid::Uuid::new_v4().simple().to_string();
            for (i, piece) in self.dialect().render(message).iter().enumerate() {
                let key = format!("{}{i}", &base[..20]);
                self.send(&message.channel_user, piece, &key).await?;
            }
            Ok(())
        })
    }
}

/// Why a platform's inbound message was not taken.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Desk(#[from] DeskError),
    /// The answer to a link command could not be queued for the customer.
    #[error("cannot queue the answer to a link command: {0}")]
    Outbox(#[from] OutboxError),
}

impl InboundError {
    /// Whether taking the same message again later may work (busy desk, storage trouble),
    /// as opposed to a message the desk refuses as such.
    pub fn is_transient(&self) -> bool {
        match self {
            InboundError::Desk(e) => matches!(
                e,
                DeskError::Busy | DeskError::Unavailable(_) | DeskError::Storage(_)
            ),
            InboundError::Outbox(_) => true,
        }
    }
}

/// Hands a platform message to the intake. Replies that belong to no conversation (the
/// answer to a `/link` command: [`Received::direct`]) are not carried by the relay, so they
/// are queued in the outbox here, durably, before this returns.
pub async fn receive(
    intake: &Intake,
    outbox: &Outbox,
    msg: Inbound,
) -> Result<Received, InboundError> {
    let channel = msg.channel;
    let channel_user = msg.channel_user.clone();
    let received = intake.receive(msg).await?;
    if received.direct {
        for reply in &received.turn.replies {
            outbox
                .enqueue(Outbound {
                    conversation_id: received.turn.conversation_id.clone(),
                    channel,
                    channel_user: channel_user.clone(),
                    text: reply.text.clone(),
                    from: Speaker::Bot,
                    time: Utc::now(),
                })
                .await?;
        }
    }
    Ok(received)
}
