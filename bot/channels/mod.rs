//! Chat platforms behind one interface. An adapter turns platform events into `Inbound`
//! for [`Intake::receive`], and puts `Outbound` messages in front of the customer again; the
//! desk and the router never see a platform type.
//!
//! Inbound: each adapter hands the message to the intake (the one door of every channel:
//! link commands, the desk, metrics) and does nothing with the `Turn` but log it; answers
//! reach the customer through the outbox ([`crate::outbox`]), written by the store in the
//! same change as the turn, agent action or notice that caused them, so a bot answer and an
//! agent's reply an hour later take the same durable path.
//! Outbound: `Channel::deliver` is what the outbox calls; `Courier` is the piece-level form
//! (already formatted and split per platform) that the outbox drives with retries.
//!
//! State (outbox records, failed deliveries, Discord routes) lives in the one store
//! ([`crate::store::Deliveries`]).

pub mod discord;
pub mod platforms;
pub mod telegram;
mod telegram_send;
pub mod widget;

use futures::future::BoxFuture;

use crate::desk::DeskError;
use crate::intake::{Intake, Received};
use crate::message::{ChannelKind, Inbound, Outbound};

pub use crate::outbox::{format, health, Courier, DeliveryError, Outbox, OutboxError};

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
                self.send(message, piece, &key).await?;
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
}

impl InboundError {
    /// Whether taking the same message again later may work (busy desk, storage trouble),
    /// as opposed to a message the desk refuses as such.
    pub fn is_transient(&self) -> bool {
        let InboundError::Desk(e) = self;
        matches!(
            e,
            DeskError::Busy | DeskError::Unavailable(_) | DeskError::Storage(_)
        )
    }
}

/// Hands a platform message to the intake, the one door of every channel. Every answer
/// (a turn's, an agent's, a queue notice, the answer to a `/link` command) reaches the
/// customer through the outbox, written by the store with what caused it.
pub async fn receive(intake: &Intake, msg: Inbound) -> Result<Received, InboundError> {
    Ok(intake.receive(msg).await?)
}
