//! One customer across channels. A customer sends `/link` on one channel and gets a one-time
//! code; sending `/link CODE` from another channel files that second identity under the same
//! customer, so an agent sees one customer and their history whatever app they write from.
//!
//! Codes are six digits, single use, valid ten minutes, kept in the store (a restart in
//! between does not lose them). Link commands are answered by `Desk::link_command` before
//! a message reaches the NLU; the change itself is one store transaction.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;

use super::copy;
use super::error::DeskError;
use super::inner::Inner;
use crate::message::{Identity, Inbound};
use crate::store::{Change, LinkCode};

/// How long a code may be used.
pub const CODE_TTL: Duration = Duration::from_secs(600);
/// Wrong codes one identity may send in [`LINK_FAILURE_WINDOW`] before it is locked out.
pub const LINK_FAILURES_ALLOWED: usize = 5;
pub const LINK_FAILURE_WINDOW: Duration = crate::store::LINK_ATTEMPT_WINDOW;

/// Why a link code could not be used; each says what to do.
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
    #[error(
        "too many wrong codes: linking is locked for this account for an hour; then send \
         /link on your other app for a new code"
    )]
    LockedOut,
    #[error(transparent)]
    Desk(#[from] DeskError),
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
pub fn parse_link_command(text: &str) -> Option<LinkCommand> {
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

/// The answer to a link command in `msg`, or `None` when the message is not one.
pub(super) async fn link_command(inner: &Inner, msg: &Inbound) -> Option<String> {
    let identity = msg.identity();
    Some(match parse_link_command(&msg.text)? {
        LinkCommand::Start => match issue_link_code(inner, &identity).await {
            Ok(code) => copy::link_code_issued(&code),
            Err(e) => copy::link_code_unavailable(&e.to_string()),
        },
        LinkCommand::Redeem(code) => match redeem_link_code(inner, &code, &identity).await {
            Ok(owner) => copy::linked_with(owner.channel.as_str()),
            Err(e) => copy::link_failed(&e.to_string()),
        },
    })
}

/// A fresh code for `identity`, durable before it is returned.
pub(super) async fn issue_link_code(
    inner: &Inner,
    identity: &Identity,
) -> Result<String, DeskError> {
    let link = LinkCode {
        identity: identity.clone(),
        expires: Utc::now() + chrono::Duration::from_std(CODE_TTL).unwrap_or_default(),
    };
    let store = &inner.store;
    // Expired codes go as new ones come.
    store.purge_link_codes(Utc::now())?;
    loop {
        let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000));
        // Only taken when free, so two customers never share one.
        if store.insert_link_code(&code, &link)? {
            store.flush().await?;
            return Ok(code);
        }
    }
}

/// Uses up `code` and files `identity` under the customer who asked for it. Returns the
/// identity that asked for the code.
pub(super) async fn redeem_link_code(
    inner: &Inner,
    code: &str,
    identity: &Identity,
) -> Result<Identity, LinkError> {
    let store = &inner.store;
    let now = Utc::now();
    let since = now - chrono::Duration::from_std(LINK_FAILURE_WINDOW).unwrap_or_default();
    // A guesser gets a few tries, then nothing: not even a right code is taken.
    if store
        .link_failures(identity, since)
        .map_err(DeskError::from)?
        >= LINK_FAILURES_ALLOWED
    {
        return Err(LinkError::LockedOut);
    }
    let failed = |e: LinkError| -> Result<Identity, LinkError> {
        store
            .note_link_failure(identity, now, since)
            .map_err(DeskError::from)?;
        tracing::info!(identity = %identity, "wrong /link code");
        Err(e)
    };
    let Some(link) = store.take_link_code(code.trim()).map_err(DeskError::from)? else {
        return failed(LinkError::Unknown);
    };
    if link.expires < now {
        return failed(LinkError::Expired);
    }
    if &link.identity == identity {
        return Err(LinkError::SameIdentity);
    }
    link_identity(inner, &link.identity, identity)
        .await?
        .ok_or(LinkError::NoCustomer)?;
    Ok(link.identity)
}

/// Files `other` under the customer of `owner` (or, if `owner` never wrote, `owner`
/// under the customer of `other`), durably. Returns the customer id, or `None` when
/// neither identity has written yet. Linking an identity with itself is `Invalid`.
pub(super) async fn link_identity(
    inner: &Inner,
    owner: &Identity,
    other: &Identity,
) -> Result<Option<String>, DeskError> {
    if owner == other {
        return Err(DeskError::Invalid(
            "an identity cannot be linked with itself".into(),
        ));
    }
    let store = &inner.store;
    // Hold both identities' turn locks, taken in the desk's one lock order (stripe index,
    // not identity key: two links whose keys sort one way and stripes the other would
    // otherwise take the same two locks in opposite orders and deadlock).
    let _guards = inner.lock_two_customers(&owner.key(), &other.key()).await?;
    let owner_customer = store.customer_of(owner)?;
    let other_customer = store.customer_of(other)?;
    let (target_id, moving, previous) = match (owner_customer, other_customer) {
        (Some(t), previous) => (t, other, previous),
        (None, Some(t)) => (t, owner, None),
        (None, None) => return Ok(None),
    };
    let mut change = Change::default();
    let Some(mut target) = store.customer(&target_id)? else {
        return Ok(None);
    };
    if let Some(prev_id) = previous.filter(|p| p != &target_id) {
        if let Some(mut prev) = store.customer(&prev_id)? {
            prev.identities.retain(|i| i != moving);
            // Keep what the shop told us about them.
            target.tier = target.tier.or(prev.tier.clone());
            target.lifetime_value = target.lifetime_value.or(prev.lifetime_value);
            target.shop_customer_id = target.shop_customer_id.or(prev.shop_customer_id.clone());
            change.customers.push(prev);
        }
    }
    if !target.identities.contains(moving) {
        target.identities.push(moving.clone());
    }
    change.identities.push((moving.clone(), target_id.clone()));
    change.customers.push(target);
    store.apply(change)?;
    store.flush().await?;
    tracing::info!(customer = %target_id, identity = %moving, "identities linked");
    Ok(Some(target_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_commands_are_recognised() {
        assert_eq!(parse_link_command("/link"), Some(LinkCommand::Start));
        assert_eq!(
            parse_link_command("  /link   042917 "),
            Some(LinkCommand::Redeem("042917".into()))
        );
        assert_eq!(
            parse_link_command("/link@frontdesk_bot 1"),
            Some(LinkCommand::Redeem("1".into()))
        );
        assert_eq!(parse_link_command("please link my accounts"), None);
        assert_eq!(parse_link_command("/linking"), None);
    }
}
