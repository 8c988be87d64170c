//! One customer across channels: filing a second channel identity under an existing
//! customer (the channels' `/link` codes end here).

use super::{Desk, DeskError};
use crate::message::Identity;
use crate::store::Change;

impl Desk {
    /// Files `other` under the customer of `owner` (or, if `owner` never wrote, `owner`
    /// under the customer of `other`), durably. Returns the customer id, or `None` when
    /// neither identity has written yet. Linking an identity with itself is `Invalid`.
    pub async fn link_identity(
        &self,
        owner: &Identity,
        other: &Identity,
    ) -> Result<Option<String>, DeskError> {
        if owner == other {
            return Err(DeskError::Invalid(
                "an identity cannot be linked with itself".into(),
            ));
        }
        let inner = self.inner();
        let store = &inner.store;
        // Hold both identities' turn locks (in key order, so two links cannot deadlock).
        let (a, b) = if owner.key() <= other.key() {
            (owner, other)
        } else {
            (other, owner)
        };
        let _a = inner.stripe(&a.key()).lock().await;
        let _b = if std::ptr::eq(inner.stripe(&a.key()), inner.stripe(&b.key())) {
            None
        } else {
            Some(inner.stripe(&b.key()).lock().await)
        };
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
}
