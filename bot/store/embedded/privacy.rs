//! The sled engine's [`CustomerData`]: export and erase across every tree, retention, and
//! a dump of every tree for tests.

use super::*;

#[async_trait]
impl CustomerData for SledStore {
    async fn find_customers(&self, id: &str) -> Result<Vec<Customer>, StoreError> {
        let mut out: Vec<Customer> = self.customer(id).await?.into_iter().collect();
        for kv in self.trees[CUSTOMERS].iter() {
            let c: Customer = decode("customers", &kv?.1)?;
            if c.shop_customer_id.as_deref() == Some(id) && !out.iter().any(|o| o.id == c.id) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Everything stored about the customer `id` (or whose shop id it is).
    async fn export_customer(&self, id: &str) -> Result<Option<CustomerExport>, StoreError> {
        let mut customers = self.find_customers(id).await?;
        if customers.is_empty() {
            return Ok(None);
        }
        let identities = self.identities_of(&customers)?;
        let mut conversations = Vec::new();
        for record in self.conversations_of(&customers, &identities)? {
            let messages = self.messages(&record.id).await?;
            conversations.push(ExportedConversation { record, messages });
        }
        let ids: Vec<_> = conversations.iter().map(|c| c.record.id.clone()).collect();
        let outbox = self
            .outbox_of(&ids, &identities)?
            .into_iter()
            .map(|(_, _, v)| v)
            .collect();
        let customer = customers.remove(0);
        Ok(Some(CustomerExport {
            customer,
            other_records: customers,
            conversations,
            outbox,
        }))
    }

    /// Removes everything stored about the customer `id` (and every record whose shop id
    /// it is): their records, identities, conversations and messages, open-conversation
    /// index, queue entries, assignments, the stored outcomes of their messages (`inbound`),
    /// link codes and attempts, outbox entries and Discord routes, in one transaction with
    /// an audit line that holds only a hash of the id and who erased it.
    async fn erase_customer(
        &self,
        id: &str,
        audit: &AuditLine,
    ) -> Result<Option<Erased>, StoreError> {
        let customers = self.find_customers(id).await?;
        if customers.is_empty() {
            return Ok(None);
        }
        let identities = self.identities_of(&customers)?;
        let records = self.conversations_of(&customers, &identities)?;
        let ids: Vec<ConversationId> = records.iter().map(|r| r.id.clone()).collect();
        let mut erased = Erased {
            conversations: ids.len(),
            identities: identities.len(),
            ..Erased::default()
        };
        // (tree, key) of everything to remove.
        let mut doomed: Vec<(usize, Vec<u8>)> = Vec::new();
        for customer in &customers {
            doomed.push((CUSTOMERS, customer.id.clone().into_bytes()));
            if let Some(shop) = &customer.shop_customer_id {
                doomed.push((LINK_ATTEMPTS, format!("shop:{shop}").into_bytes()));
            }
        }
        for identity in &identities {
            let key = identity.key().into_bytes();
            doomed.push((IDENTITIES, key.clone()));
            doomed.push((OPEN, key.clone()));
            // The stored outcomes of their messages (served again for a repeated message
            // id): they hold the bot's answers, order details included.
            let mut prefix = key.clone();
            prefix.push(0);
            for kv in self.trees[INBOUND].scan_prefix(prefix) {
                doomed.push((INBOUND, kv?.0.to_vec()));
            }
            doomed.push((LINK_ATTEMPTS, key));
            if identity.channel == crate::message::ChannelKind::Discord {
                doomed.push((
                    DISCORD_ROUTES,
                    format!("user:{}", identity.user).into_bytes(),
                ));
                for kv in self.trees[DISCORD_ROUTES].scan_prefix(b"thread:") {
                    let (k, v) = kv?;
                    if v.as_ref() == identity.user.as_bytes() {
                        doomed.push((DISCORD_ROUTES, k.to_vec()));
                    }
                }
            }
        }
        for id in &ids {
            doomed.push((CONVERSATIONS, id.0.clone().into_bytes()));
            let mut prefix = id.0.as_bytes().to_vec();
            prefix.push(0);
            for kv in self.trees[MESSAGES].scan_prefix(prefix) {
                doomed.push((MESSAGES, kv?.0.to_vec()));
                erased.messages += 1;
            }
        }
        for kv in self.trees[OPEN].iter() {
            let (k, v) = kv?;
            if ids.iter().any(|id| id.0.as_bytes() == v.as_ref()) {
                doomed.push((OPEN, k.to_vec()));
            }
        }
        for kv in self.trees[QUEUE].iter() {
            let (k, _) = kv?;
            if matches!(split_pair(&k), Some((_, c)) if ids.iter().any(|id| id.0 == c)) {
                doomed.push((QUEUE, k.to_vec()));
            }
        }
        for kv in self.trees[ASSIGNMENTS].iter() {
            let (k, _) = kv?;
            if matches!(split_pair(&k), Some((_, c)) if ids.iter().any(|id| id.0 == c)) {
                doomed.push((ASSIGNMENTS, k.to_vec()));
            }
        }
        for kv in self.trees[LINK_CODES].iter() {
            let (k, v) = kv?;
            if let Ok(link) = serde_json::from_slice::<LinkCode>(&v) {
                if identities.contains(&link.identity) {
                    doomed.push((LINK_CODES, k.to_vec()));
                }
            }
        }
        for (tree, key, _) in self.outbox_of(&ids, &identities)? {
            doomed.push((tree, key));
        }
        erased.other = doomed.len() - erased.messages - erased.conversations;
        let (audit_key, audit_value) = (Self::audit_key(audit.time), encode(audit));
        let result: sled::transaction::TransactionResult<(), ()> =
            self.trees[..].transaction(|t| {
                for (tree, key) in &doomed {
                    t[*tree].remove(key.as_slice())?;
                }
                t[AUDIT].insert(&audit_key[..], audit_value.as_slice())?;
                Ok(())
            });
        match result {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
            Err(sled::transaction::TransactionError::Abort(())) => unreachable!("never aborts"),
        }
        self.note_write();
        Ok(Some(erased))
    }

    /// Deletes closed conversations last updated before `before`, with their messages;
    /// returns how many.
    async fn purge_closed(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut purged = 0;
        for kv in self.trees[CONVERSATIONS].iter() {
            let (k, v) = kv?;
            let r: ConversationRecord = decode("conversations", &v)?;
            if r.status != Status::Closed || r.updated >= before {
                continue;
            }
            let mut prefix = r.id.0.as_bytes().to_vec();
            prefix.push(0);
            for m in self.trees[MESSAGES].scan_prefix(prefix) {
                self.trees[MESSAGES].remove(m?.0)?;
            }
            self.trees[CONVERSATIONS].remove(k)?;
            purged += 1;
        }
        if purged > 0 {
            self.note_write();
        }
        Ok(purged)
    }
}

impl SledStore {
    /// The identities of these customers (their records' and any filed under them).
    fn identities_of(&self, customers: &[Customer]) -> Result<Vec<Identity>, StoreError> {
        let mut out: Vec<Identity> = Vec::new();
        for c in customers {
            for i in &c.identities {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
        }
        for kv in self.trees[IDENTITIES].iter() {
            let (k, v) = kv?;
            if customers.iter().any(|c| v.as_ref() == c.id.as_bytes()) {
                let key = String::from_utf8_lossy(&k).into_owned();
                if let Some(identity) = Identity::from_key(&key) {
                    if !out.contains(&identity) {
                        out.push(identity);
                    }
                }
            }
        }
        Ok(out)
    }

    fn conversations_of(
        &self,
        customers: &[Customer],
        identities: &[Identity],
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trees[CONVERSATIONS].iter() {
            let r: ConversationRecord = decode("conversations", &kv?.1)?;
            if customers.iter().any(|c| c.id == r.customer) || identities.contains(&r.identity()) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Outbox entries (both outbox trees) for these conversations or identities.
    fn outbox_of(
        &self,
        conversations: &[ConversationId],
        identities: &[Identity],
    ) -> Result<Vec<(usize, Vec<u8>, serde_json::Value)>, StoreError> {
        #[derive(Deserialize)]
        struct Entry {
            message: crate::message::Outbound,
        }
        let mut out = Vec::new();
        for tree in [OUTBOX, OUTBOX_FAILED] {
            for kv in self.trees[tree].iter() {
                let (k, v) = kv?;
                let Ok(entry) = serde_json::from_slice::<Entry>(&v) else {
                    continue;
                };
                let m = &entry.message;
                let identity = Identity::new(m.channel, &m.channel_user);
                if conversations.contains(&m.conversation_id) || identities.contains(&identity) {
                    let value = serde_json::from_slice(&v).unwrap_or(serde_json::Value::Null);
                    out.push((tree, k.to_vec(), value));
                }
            }
        }
        Ok(out)
    }

    /// Every key of every tree, as text, for checks that nothing of a customer is left.
    pub fn dump(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut out = Vec::new();
        for (i, tree) in self.trees.iter().enumerate() {
            for kv in tree.iter() {
                let (k, v) = kv?;
                out.push((
                    TREES[i].to_string(),
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ));
            }
        }
        Ok(out)
    }
}
