//! One customer across channels. A customer sends `/link` on one channel and gets a one-time
//! code; sending `/link CODE` from another channel files that second identity under the same
//! customer, so an agent sees one customer and their history whatever app they write from.
//!
//! Codes are eight characters of Crockford's base-32 alphabet (40 bits, written `K7QX-3MZD`;
//! read case-blind, with `I`/`L` as 1 and `O` as 0, dashes and spaces ignored), single use,
//! valid ten minutes, kept in the store (a restart in between does not lose them). Wrong codes
//! are budgeted per identity, per network address and overall (see [`LINK_FAILURES_ALLOWED`],
//! [`LINK_FAILURES_PER_ADDRESS`], [`LINK_FAILURES_OVERALL`]), so a
//! guesser with endless fresh identities still gets a bounded number of tries. Link commands
//! are answered by `Desk::link_command` before a message reaches the NLU; the change itself is
//! one store transaction. Linking files identities under one customer for history; it never
//! lets the new identity speak for the customer's shop account (see `Customer::shop_verified`).

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
/// Wrong codes from one network address (any identity) per window.
pub const LINK_FAILURES_PER_ADDRESS: usize = 30;
/// Wrong codes from everyone together per window; past it linking pauses for all.
pub const LINK_FAILURES_OVERALL: usize = 300;
// Every budget is counted in records that keep this many failures at most.
const _: () = assert!(LINK_FAILURES_OVERALL < crate::store::MAX_NOTED_FAILURES);
/// The failure key of every wrong code, from anyone.
const LINK_OVERALL_KEY: &str = "link-all";
/// Characters of a code (5 bits each).
pub const CODE_LEN: usize = 8;
/// Crockford's base 32: no I, L, O or U, so nothing reads as something else.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

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
    #[error(
        "too many wrong codes from your network: linking is paused here for an hour; you can \
         keep chatting meanwhile"
    )]
    AddressLockedOut,
    #[error(
        "linking is paused for a while after many wrong codes: please try again in an hour; \
         you can keep chatting meanwhile"
    )]
    Paused,
    #[error(transparent)]
    Desk(#[from] DeskError),
}

/// A link command in a customer's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkCommand {
    /// `/link`: give me a code.
    Start,
    /// `/link K7QX-3MZD`: here is the code from my other app.
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
        Some(code) => Some(LinkCommand::Redeem(
            std::iter::once(code)
                .chain(words)
                .collect::<Vec<_>>()
                .join(""),
        )),
    }
}

/// A fresh random code, as shown to the customer (`K7QX-3MZD`).
pub fn new_code() -> String {
    shown(&random_code())
}

/// [`CODE_LEN`] random symbols: a code as it is stored.
fn random_code() -> String {
    let mut rng = rand::thread_rng();
    (0..CODE_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A stored code as the customer reads it: two groups of four.
fn shown(code: &str) -> String {
    format!("{}-{}", &code[..CODE_LEN / 2], &code[CODE_LEN / 2..])
}

/// A code as typed, in its stored form (eight symbols, no dash), or `None` when it cannot
/// be one. Case-blind; `I`/`L` read as 1 and `O` as 0; dashes and spaces ignored.
pub fn normalise_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == CODE_LEN {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

/// The answer to a link command in `msg`, or `None` when the message is not one.
pub(super) async fn link_command(inner: &Inner, msg: &Inbound) -> Option<String> {
    let identity = msg.identity();
    Some(match parse_link_command(&msg.text)? {
        LinkCommand::Start => match issue_link_code(inner, &identity).await {
            Ok(code) => copy::link_code_issued(&code),
            Err(e) => copy::link_code_unavailable(&e.to_string()),
        },
        LinkCommand::Redeem(code) => {
            match redeem_link_code(inner, &code, &identity, msg.origin).await {
                Ok(owner) => copy::linked_with(owner.channel.as_str()),
                Err(e) => copy::link_failed(&e.to_string()),
            }
        }
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
    store.purge_link_codes(Utc::now()).await?;
    loop {
        let code = random_code();
        // Only taken when free, so two customers never share one.
        if store.insert_link_code(&code, &link).await? {
            store.flush().await?;
            return Ok(shown(&code));
        }
    }
}

/// Uses up `code` and files `identity` under the customer who asked for it. Returns the
/// identity that asked for the code.
pub(super) async fn redeem_link_code(
    inner: &Inner,
    code: &str,
    identity: &Identity,
    origin: Option<std::net::IpAddr>,
) -> Result<Identity, LinkError> {
    let store = &inner.store;
    let now = Utc::now();
    let since = now - chrono::Duration::from_std(LINK_FAILURE_WINDOW).unwrap_or_default();
    let address = origin.map(|ip| format!("link-addr:{ip}"));
    // A guesser gets a few tries, then nothing: not even a right code is taken. The
    // identity's budget stops one chat; the address's and the overall one stop a guesser
    // who makes a fresh identity for every few guesses.
    let over = async |key: &str, allowed: usize| -> Result<bool, LinkError> {
        Ok(store.failures(key, since).await.map_err(DeskError::from)? >= allowed)
    };
    if over(&identity.key(), LINK_FAILURES_ALLOWED).await? {
        return Err(LinkError::LockedOut);
    }
    if let Some(address) = &address {
        if over(address, LINK_FAILURES_PER_ADDRESS).await? {
            return Err(LinkError::AddressLockedOut);
        }
    }
    if over(LINK_OVERALL_KEY, LINK_FAILURES_OVERALL).await? {
        return Err(LinkError::Paused);
    }
    let failed = async |e: LinkError| -> Result<Identity, LinkError> {
        let keys = [
            Some(identity.key()),
            address.clone(),
            Some(LINK_OVERALL_KEY.to_string()),
        ];
        for key in keys.iter().flatten() {
            store
                .note_failure(key, now, since)
                .await
                .map_err(DeskError::from)?;
        }
        crate::metrics::link_code_refused();
        tracing::info!(identity = %identity, origin = ?origin, "wrong /link code");
        Err(e)
    };
    let Some(code) = normalise_code(code) else {
        return failed(LinkError::Unknown).await;
    };
    let Some(link) = store.take_link_code(&code).await.map_err(DeskError::from)? else {
        return failed(LinkError::Unknown).await;
    };
    if link.expires < now {
        return failed(LinkError::Expired).await;
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
    let owner_customer = store.customer_of(owner).await?;
    let other_customer = store.customer_of(other).await?;
    let (target_id, moving, previous) = match (owner_customer, other_customer) {
        (Some(t), previous) => (t, other, previous),
        (None, Some(t)) => (t, owner, None),
        (None, None) => return Ok(None),
    };
    let mut change = Change::default();
    let Some(mut target) = store.customer(&target_id).await? else {
        return Ok(None);
    };
    if let Some(prev_id) = previous.filter(|p| p != &target_id) {
        if let Some(mut prev) = store.customer(&prev_id).await? {
            prev.identities.retain(|i| i != moving);
            // Keep what the shop told us about them.
            target.tier = target.tier.or(prev.tier.clone());
            target.lifetime_value = target.lifetime_value.or(prev.lifetime_value);
            // The shop id goes along with the identities that proved it, and only those: a
            // linked identity speaks for the shop customer once it proves it itself.
            if target.shop_customer_id.is_none() && prev.shop_customer_id.is_some() {
                target.shop_customer_id = prev.shop_customer_id.clone();
                target.shop_verified = prev.shop_verified.clone();
            }
            change.customers.push(prev);
        }
    }
    if !target.identities.contains(moving) {
        target.identities.push(moving.clone());
    }
    change.identities.push((moving.clone(), target_id.clone()));
    change.customers.push(target);
    store.apply(change).await?;
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
            parse_link_command("  /link   K7QX 3MZD "),
            Some(LinkCommand::Redeem("K7QX3MZD".into()))
        );
        assert_eq!(
            parse_link_command("/link@frontdesk_bot 1"),
            Some(LinkCommand::Redeem("1".into()))
        );
        assert_eq!(parse_link_command("please link my accounts"), None);
        assert_eq!(parse_link_command("/linking"), None);
    }

    /// Codes carry 40 bits, are shown in two groups of four and read back however a phone
    /// keyboard typed them; anything that cannot be a code is refused before a look-up.
    #[test]
    fn codes_are_forty_bits_and_forgiving_to_type() {
        let code = new_code();
        assert_eq!(code.len(), CODE_LEN + 1);
        assert_eq!(&code[4..5], "-");
        let stored = normalise_code(&code).unwrap();
        assert_eq!(stored.len() * 5, 40);
        assert_eq!(normalise_code(&code.to_lowercase()), Some(stored.clone()));
        assert_eq!(normalise_code("k7qx 3mzd"), Some("K7QX3MZD".into()));
        assert_eq!(normalise_code("IL0O-ABCD"), Some("1100ABCD".into()));
        assert_eq!(normalise_code("123456"), None, "the old six digits");
        assert_eq!(normalise_code("K7QX-3MZD-9"), None);
        assert_eq!(normalise_code("K7QX-3MZÜ"), None);
        assert_eq!(normalise_code("K7QX-3MZU"), None, "U is no symbol");
        let many: std::collections::HashSet<String> = (0..1000).map(|_| new_code()).collect();
        assert_eq!(many.len(), 1000);
    }
}
