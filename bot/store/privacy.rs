//! A customer's data as a whole: export, erase, retention.

use super::*;

/// Customers' data as a whole: export, erase, retention. Part of every [`Store`].
#[async_trait]
pub trait CustomerData {
    /// The customer with this id, or whose shop customer id this is.
    async fn find_customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        Ok(self.find_customers(id).await?.into_iter().next())
    }
    /// Every customer record this id names: the record with this id, and every record
    /// whose shop customer id it is (each identity that presented the shop's token before
    /// it was linked has a record of its own).
    async fn find_customers(&self, id: &str) -> Result<Vec<Customer>, StoreError>;
    /// Everything stored about the customer `id` (or whose shop id it is).
    async fn export_customer(&self, id: &str) -> Result<Option<CustomerExport>, StoreError>;
    /// Removes everything stored about the customer `id` (and every record whose shop id
    /// it is) in one atomic change, with `audit` (which holds no personal data).
    async fn erase_customer(
        &self,
        id: &str,
        audit: &AuditLine,
    ) -> Result<Option<Erased>, StoreError>;
    /// Deletes closed conversations last updated before `before`, with their messages;
    /// returns how many.
    async fn purge_closed(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;
}
