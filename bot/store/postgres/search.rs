//! The PostgreSQL engine's [`ConversationSearch`]: one query, newest changed first, with
//! `ILIKE` for the customer and the text and a whole-word pattern for the order number. No
//! index serves the text (a search reads the messages it must); a statement timeout bounds
//! what one search may cost the database.

use super::*;
use crate::store::search::{like_pattern, order_regex, snippet, Folded};

/// The longest one search may run before the database stops it.
const SEARCH_TIMEOUT: &str = "10s";

const SEARCH: &str = "
SELECT c.body,
       CASE
         WHEN $5::text IS NOT NULL THEN
           (SELECT m.body->>'text' FROM messages m
             WHERE m.conversation_id = c.id AND m.body->>'text' ILIKE $5 ORDER BY m.seq LIMIT 1)
         WHEN $3::text IS NOT NULL THEN
           (SELECT m.body->>'text' FROM messages m
             WHERE m.conversation_id = c.id AND m.body->>'text' ~* $4 ORDER BY m.seq LIMIT 1)
       END
  FROM conversations c
  LEFT JOIN customers cu ON cu.id = c.customer_id
 WHERE ($1::timestamptz IS NULL OR c.updated >= $1)
   AND ($2::timestamptz IS NULL OR (c.body->>'created')::timestamptz < $2)
   AND ($6::text IS NULL
        OR c.customer_id ILIKE $6 OR c.body->>'channel_user' ILIKE $6
        OR cu.body->>'name' ILIKE $6 OR cu.body->>'email' ILIKE $6)
   AND ($3::text IS NULL
        OR lower(c.body->'slots'->>'order') = lower($3)
        OR EXISTS (SELECT 1 FROM messages m
                    WHERE m.conversation_id = c.id AND m.body->>'text' ~* $4))
   AND ($5::text IS NULL
        OR EXISTS (SELECT 1 FROM messages m
                    WHERE m.conversation_id = c.id AND m.body->>'text' ILIKE $5))
 ORDER BY c.updated DESC, c.id
 LIMIT $7";

#[async_trait]
impl ConversationSearch for PgStore {
    async fn search_conversations(&self, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        if query.problem().is_some() {
            return Ok(SearchResults::nothing());
        }
        let want = Folded::of(query);
        let order = want.order.clone();
        let order_pattern = order.as_deref().map(order_regex);
        let text = want.text.as_deref().map(like_pattern);
        let customer = want.customer.as_deref().map(like_pattern);
        let limit = query.limit as i64;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(&format!("SET LOCAL statement_timeout = '{SEARCH_TIMEOUT}'"))
            .await?;
        let statement = tx.prepare_cached(SEARCH).await?;
        let rows = tx
            .query(
                &statement,
                &[
                    &query.from,
                    &query.to,
                    &order,
                    &order_pattern,
                    &text,
                    &customer,
                    &limit,
                ],
            )
            .await
            .map_err(|e| match e.code() {
                Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {
                    StoreError::Postgres(format!(
                        "the search ran past {SEARCH_TIMEOUT}: narrow it (a customer, an order \
                         number or a date window)"
                    ))
                }
                _ => StoreError::from(e),
            })?;
        tx.commit().await?;
        let mut hits = Vec::with_capacity(rows.len());
        for row in rows {
            let conversation: ConversationRecord =
                from_json("conversations", row.get::<_, Json<_>>(0).0)?;
            let matched: Option<String> = row.get(1);
            hits.push(SearchHit {
                conversation,
                snippet: matched.map(|t| snippet(&t, query)),
            });
        }
        Ok(SearchResults {
            hits,
            complete: true,
        })
    }
}
