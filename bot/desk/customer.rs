//! The customer behind a channel identity: made on first contact, kept up to date from the
//! shop's signed profile (and the shop's own record where the profile is silent), with the
//! identities that proved the shop account themselves.

use chrono::{DateTime, Utc};

use super::error::DeskError;
use super::inner::Inner;
use crate::message::{Identity, Inbound};
use crate::store::{Change, Customer};

/// The customer behind this identity, created on first contact; a trusted profile updates
/// it (and the shop fills what the profile leaves out, from its own customer record).
pub(super) async fn customer_for(
    inner: &Inner,
    msg: &Inbound,
    identity: &Identity,
    change: &mut Change,
    now: DateTime<Utc>,
) -> Result<Customer, DeskError> {
    let store = &inner.store;
    let existing = match store.customer_of(identity).await? {
        Some(id) => store.customer(&id).await?,
        None => None,
    };
    let mut dirty = existing.is_none();
    let mut customer = existing.unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().to_string();
        change.identities.push((identity.clone(), id.clone()));
        Customer {
            id,
            tier: None,
            lifetime_value: None,
            name: None,
            email: None,
            shop_customer_id: None,
            identities: vec![identity.clone()],
            created: now,
            conversations: 0,
            blocked: None,
            shop_verified: Vec::new(),
            notices: Default::default(),
        }
    });
    if let Some(p) = &msg.profile {
        let before = customer.clone();
        if let Some(shop_id) = &p.customer_id {
            let known =
                customer.shop_customer_id.as_ref() == Some(shop_id) && customer.tier.is_some();
            if customer.shop_customer_id.as_ref() != Some(shop_id) {
                // Another shop customer now: what earlier identities proved was someone else.
                customer.shop_verified.clear();
            }
            customer.shop_customer_id = Some(shop_id.clone());
            if !customer.shop_verified.contains(identity) {
                customer.shop_verified.push(identity.clone());
            }
            if !known && (p.tier.is_none() || p.lifetime_value.is_none()) {
                match inner.dialogue.commerce().customer(shop_id).await {
                    Ok(Some(c)) => {
                        customer.tier = Some(c.tier);
                        customer.lifetime_value = Some(c.lifetime_value);
                        customer.name = Some(c.name);
                        customer.email = Some(c.email);
                    }
                    Ok(None) => tracing::warn!(shop_id, "the shop does not know this customer"),
                    Err(e) => tracing::warn!(error = %e, "customer look-up failed"),
                }
            }
        }
        if p.tier.is_some() {
            customer.tier = p.tier.as_ref().map(|t| t.to_lowercase());
        }
        if p.lifetime_value.is_some() {
            customer.lifetime_value = p.lifetime_value;
        }
        if p.name.is_some() {
            customer.name = p.name.clone();
        }
        if p.email.is_some() {
            customer.email = p.email.clone();
        }
        dirty |= customer != before;
    }
    if dirty {
        change.customers.push(customer.clone());
    }
    Ok(customer)
}
