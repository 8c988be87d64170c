//! One customer across channels: a customer sends `/link` on one channel and gets a
//! one-time code; sending `/link CODE` from another channel files that second identity under
//! the same customer, so an agent sees one customer and their history whatever app they
//! write from.
//!
//! Codes are six digits, single use, valid ten minutes, kept in sled (a restart in between
//! does not lose them). Any channel calls [`Linker::intercept`] before `Desk::receive`;
//! link commands never reach the NLU.
//!
//! The change itself is the engine's `Desk::link_identity` (one store transaction).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::outbox::{Outbox, OutboxError};
use crate::desk::{Desk, DeskError};
use crate::message::{ConversationId, Identity, Inbound, Outbound, Speaker};

/// How long a code may be used.
pub const CODE_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("that code is unknown or already used: send /link on your other app for a new one")]
    Unknown,
    #[error("that code has expired: send /link on your other app for a new one")]
    Expired,
    #[error("that code was made on this same account; use it from your other app")]
    SameIdentity,
    #[error("write us a message first, then link")]
    NoCustomer,
    #[error("storage: {0}")]
    Storage(String),
}

impl From<sled::Error> for LinkError {
    fn from(e: sled::Error) -> Self {
        LinkError::Storage(e.to_string())
    }
}

impl From<DeskError> for LinkError {
    fn from(e: DeskError) -> Self {
        LinkError::Storage(e.to_string())
    }
}

/// A link command in a customer's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkCommand {
    /// `/link`: give me a code.
    Start,
    /// `/link 123456`: here is the code from my other app.
    Redeem(String),
}

/// Recognises `/link` and `/link CODE` (also `/link@botname CODE` as Telegram groups write it).
pub fn parse(text: &str) -> Option<LinkCommand> {
    let mut words = text.split_whitespace();
    let first = words.next()?;
    if !(first == "/link" || first.starts_with("/link@")) {
        return None;
    }
    match words.next() {
        None => Some(LinkCommand::Start),
        Some(code) => Some(LinkCommand::Redeem(code.to_string())),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    identity: Identity,
    expires: DateTime<Utc>,
}

/// Issues and redeems link codes, and answers link commands on behalf of the channels.
#[derive(Clone)]
pub struct Linker {
    codes: sled::Tree,
    desk: Desk,
    outbox: Outbox,
}

impl Linker {
    pub fn open(db: &sled::Db, desk: Desk, outbox: Outbox) -> Result<Linker, sled::Error> {
        Ok(Linker {
            codes: db.open_tree("link_codes")?,
            desk,
            outbox,
        })
    }

    /// A fresh code for `identity`.
    pub fn issue(&self, identity: &Identity) -> Result<String, LinkError> {
        let pending = Pending {
            identity: identity.clone(),
            expires: Utc::now() + chrono::Duration::from_std(CODE_TTL).unwrap_or_default(),
        };
        let value = serde_json::to_vec(&pending).map_err(|e| LinkError::Storage(e.to_string()))?;
        loop {
            let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000));
            // Only insert when the code is free, so two customers never share one.
            let swapped = self.codes.compare_and_swap(
                code.as_bytes(),
                None as Option<&[u8]>,
                Some(value.as_slice()),
            )?;
            if swapped.is_ok() {
                self.codes.flush()?;
                return Ok(code);
            }
        }
    }

    /// Uses up `code`; returns the identity that asked for it.
    pub fn redeem(&self, code: &str) -> Result<Identity, LinkError> {
        let Some(bytes) = self.codes.remove(code.trim().as_bytes())? else {
            return Err(LinkError::Unknown);
        };
        let pending: Pending =
            serde_json::from_slice(&bytes).map_err(|e| LinkError::Storage(e.to_string()))?;
        if pending.expires < Utc::now() {
            return Err(LinkError::Expired);
        }
        Ok(pending.identity)
    }

    /// Files `other` under the customer of `owner` (or, if `owner` never wrote, `owner` under
    /// the customer of `other`). Returns the customer id.
    pub async fn link(&self, owner: &Identity, other: &Identity) -> Result<String, LinkError> {
        if owner == other {
            return Err(LinkError::SameIdentity);
        }
        self.desk
            .link_identity(owner, other)
            .await?
            .ok_or(LinkError::NoCustomer)
    }

    /// The answer to a link command in `msg`, or `None` when it is not one. For channels
    /// that answer themselves (the web widget).
    pub async fn answer(&self, msg: &Inbound) -> Option<String> {
        let identity = msg.identity();
        Some(match parse(&msg.text)? {
            LinkCommand::Start => match self.issue(&identity) {
                Ok(code) => format!(
                    "Your link code is {code}. Within 10 minutes, send \"/link {code}\" from the \
                     other app where you talk to us, and we will know it is you there too."
                ),
                Err(e) => format!("Sorry, no code right now ({e}). Please try again."),
            },
            LinkCommand::Redeem(code) => {
                let linked = match self.redeem(&code) {
                    Ok(owner) => self.link(&owner, &identity).await.map(|_| owner),
                    Err(e) => Err(e),
                };
                match linked {
                    Ok(owner) => format!(
                        "Done: this chat is now linked with your {} account. Our team sees one \
                         history for you.",
                        owner.channel
                    ),
                    Err(e) => format!("I could not link this chat: {e}."),
                }
            }
        })
    }

    /// Answers a link command in `msg` through the outbox (Telegram, Discord); returns
    /// whether it was one.
    pub async fn intercept(&self, msg: &Inbound) -> Result<bool, OutboxError> {
        let Some(text) = self.answer(msg).await else {
            return Ok(false);
        };
        let conversation_id = self
            .desk
            .conversation_of(msg.channel, &msg.channel_user)
            .ok()
            .flatten()
            .unwrap_or_else(|| ConversationId(format!("link:{}", msg.identity())));
        self.outbox
            .enqueue(Outbound {
                conversation_id,
                channel: msg.channel,
                channel_user: msg.channel_user.clone(),
                text,
                from: Speaker::Bot,
                time: Utc::now(),
            })
            .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_commands_are_recognised() {
        assert_eq!(parse("/link"), Some(LinkCommand::Start));
        assert_eq!(
            parse("  /link   042917 "),
            Some(LinkCommand::Redeem("042917".into()))
        );
        assert_eq!(
            parse("/link@frontdesk_bot 1"),
            Some(LinkCommand::Redeem("1".into()))
        );
        assert_eq!(parse("please link my accounts"), None);
        assert_eq!(parse("/linking"), None);
    }
}
