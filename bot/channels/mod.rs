//! Chat platforms behind one interface. An adapter turns platform events into `Inbound`
//! for `Desk::receive`, and puts `Outbound` messages in front of the customer again; the
//! desk and the router never see a platform type.
//!
//! Inbound: each adapter calls `Desk::receive` and does nothing with the `Turn` but log it;
//! answers reach the customer through `relay` (desk events -> outbox), so a bot answer and
//! an agent's reply an hour later take the same durable path.
//! Outbound: `Channel::deliver` is what the outbox calls; `Courier` is the piece-level form
//! (already formatted and split per platform) that `outbox` drives with retries.

pub mod discord;
pub mod format;
pub mod health;
pub mod identity;
pub mod outbox;
pub mod platforms;
pub mod relay;
pub mod telegram;

use crate::message::{ChannelKind, Outbound};
use futures::future::BoxFuture;

pub use outbox::{Courier, DeliveryError};

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
            for piece in self.dialect().render(message) {
                self.send(&message.channel_user, &piece).await?;
            }
            Ok(())
        })
    }
}
