//! The PostgreSQL engine's [`CustomerData`]: export and erase across every table, in one
//! transaction; retention of closed conversations.

use super::*;

impl PgStore {
    /// The identities of these customers (their records' and any filed under them).
    async fn identities_of(&self, customers: &[Customer]) -> Result<Vec<Identity>, StoreError> {
        let ids: Vec<&str> = customers.iter().map(|c| c.id.as_str()).collect();
        let mut out: Vec<Identity> = Vec::new();
        for c in customers {
            for i in &c.identities {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
        }
        let rows = self
            .rows(
                "SELECT identity FROM identities WHERE customer_id = ANY($1) ORDER BY identity",
                &[&ids],
            )
            .await?;
        for row in rows {
            if let Some(identity) = Identity::from_key(row.get(0)) {
                if !out.contains(&identity) {
                    out.push(identity);
                }
            }
        }
        Ok(out)
    }

    async fn conversations_of(
        &self,
        customers: &[Customer],
        identities: &[Identity],
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let ids: Vec<&str> = customers.iter().map(|c| c.id.as_str()).collect();
        let keys: Vec<String> = identities.iter().map(Identity::key).collect();
        self.bodies(
            "conversations",
            "SELECT body FROM conversations WHERE customer_id = ANY($1) OR identity = ANY($2)
             ORDER BY id",
            &[&ids, &keys],
        )
        .await
    }
}

#[async_trait]
impl CustomerData for PgStore {
    async fn find_customers(&self, id: &str) -> Result<Vec<Customer>, StoreError> {
        // The record with this id first, then the ones whose shop id it is.
        self.bodies(
            "customers",
            "SELECT body FROM customers WHERE id = $1 OR shop_customer_id = $1
             ORDER BY (id = $1) DESC, id",
            &[&id],
        )
        .await
    }

    async fn export_customer(&self, id: &str) -> Result<Option<CustomerExport>, StoreError> {
        let mut customers = self.find_customers(id).await?;
        if customers.is_empty() {
            return Ok(None);
        }
        let identities = self.identities_of(&customers).await?;
        let mut conversations = Vec::new();
        for record in self.conversations_of(&customers, &identities).await? {
            let messages = self.messages(&record.id).await?;
            conversations.push(ExportedConversation { record, messages });
        }
        let ids: Vec<&str> = conversations
            .iter()
            .map(|c| c.record.id.0.as_str())
            .collect();
        let keys: Vec<String> = identities.iter().map(Identity::key).collect();
        let outbox = self
            .bodies(
                "outbox",
                "SELECT body FROM (
                     SELECT id, body FROM outbox WHERE conversation_id = ANY($1) OR identity = ANY($2)
                     UNION ALL
                     SELECT id, body FROM outbox_failed
                         WHERE conversation_id = ANY($1) OR identity = ANY($2)
                 ) o ORDER BY id",
                &[&ids, &keys],
            )
            .await?;
        let customer = customers.remove(0);
        Ok(Some(CustomerExport {
            customer,
            other_records: customers,
            conversations,
            outbox,
        }))
    }

    async fn erase_customer(
        &self,
        id: &str,
        audit: &AuditLine,
    ) -> Result<Option<Erased>, StoreError> {
        let customers = self.find_customers(id).await?;
        if customers.is_empty() {
            return Ok(None);
        }
        let identities = self.identities_of(&customers).await?;
        let records = self.conversations_of(&customers, &identities).await?;
        let ids: Vec<&str> = records.iter().map(|r| r.id.0.as_str()).collect();
        let customer_ids: Vec<&str> = customers.iter().map(|c| c.id.as_str()).collect();
        let keys: Vec<String> = identities.iter().map(Identity::key).collect();
        let mut attempt_keys = keys.clone();
        attempt_keys.extend(
            customers
                .iter()
                .filter_map(|c| c.shop_customer_id.as_ref().map(|s| format!("shop:{s}"))),
        );
        let discord_users: Vec<&str> = identities
            .iter()
            .filter(|i| i.channel == ChannelKind::Discord)
            .map(|i| i.user.as_str())
            .collect();
        let discord_keys: Vec<String> = discord_users.iter().map(|u| format!("user:{u}")).collect();

        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut erased = Erased {
            conversations: ids.len(),
            identities: identities.len(),
            ..Erased::default()
        };
        erased.messages = tx
            .execute(
                "DELETE FROM messages WHERE conversation_id = ANY($1)",
                &[&ids],
            )
            .await? as usize;
        tx.execute("DELETE FROM conversations WHERE id = ANY($1)", &[&ids])
            .await?;
        let mut other = 0u64;
        let deletions: [(&str, Params); 13] = [
            (
                "DELETE FROM customers WHERE id = ANY($1)",
                vec![&customer_ids],
            ),
            (
                "DELETE FROM identities WHERE identity = ANY($1)",
                vec![&keys],
            ),
            (
                "DELETE FROM open WHERE identity = ANY($1) OR conversation_id = ANY($2)",
                vec![&keys, &ids],
            ),
            ("DELETE FROM inbound WHERE identity = ANY($1)", vec![&keys]),
            (
                "DELETE FROM link_attempts WHERE key = ANY($1)",
                vec![&attempt_keys],
            ),
            (
                "DELETE FROM queue WHERE conversation_id = ANY($1)",
                vec![&ids],
            ),
            (
                "DELETE FROM assignments WHERE conversation_id = ANY($1)",
                vec![&ids],
            ),
            (
                "DELETE FROM link_codes WHERE identity = ANY($1)",
                vec![&keys],
            ),
            (
                "DELETE FROM outbox WHERE conversation_id = ANY($1) OR identity = ANY($2)",
                vec![&ids, &keys],
            ),
            (
                "DELETE FROM outbox_failed WHERE conversation_id = ANY($1) OR identity = ANY($2)",
                vec![&ids, &keys],
            ),
            (
                "DELETE FROM channel_state WHERE channel = 'discord' AND key = ANY($1)",
                vec![&discord_keys],
            ),
            (
                "DELETE FROM channel_state WHERE channel = 'discord' AND key LIKE 'thread:%'
                 AND value = ANY($1)",
                vec![&discord_users],
            ),
            (
                "DELETE FROM awaiting WHERE conversation_id = ANY($1)",
                vec![&ids],
            ),
        ];
        for (sql, params) in deletions {
            other += tx.execute(sql, &params).await?;
        }
        erased.other = other as usize;
        access::insert_audit(&tx, audit).await?;
        tx.commit().await?;
        Ok(Some(erased))
    }

    async fn purge_closed(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let ids: Vec<String> = tx
            .query(
                "DELETE FROM conversations WHERE status = 'closed' AND updated < $1 RETURNING id",
                &[&before],
            )
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        tx.execute(
            "DELETE FROM messages WHERE conversation_id = ANY($1)",
            &[&ids],
        )
        .await?;
        tx.commit().await?;
        Ok(ids.len())
    }
}
