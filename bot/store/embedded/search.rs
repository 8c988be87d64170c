//! The sled engine's [`ConversationSearch`]: a scan, bounded. The conversations tree is keyed
//! by id, so the records are read once (at most [`SCAN_CONVERSATIONS`]) for the cheap checks
//! (date window, customer); the survivors, newest changed first, then have their messages
//! read (at most [`SCAN_MESSAGES`] in all) until the limit is found. Past either bound the
//! answer says it is not complete.

use std::collections::HashMap;

use super::*;
use crate::store::search::{contains_folded, mentions_order, snippet, Folded};

/// Conversation records one search reads at most.
const SCAN_CONVERSATIONS: usize = 100_000;
/// Messages one search reads at most.
const SCAN_MESSAGES: usize = 200_000;

impl SledStore {
    /// Whether the customer of `r` is the one `needle` (lower case) names: part of the
    /// customer id, channel user, name or email. Customers are read once per search.
    fn customer_matches(
        &self,
        r: &ConversationRecord,
        needle: &str,
        seen: &mut HashMap<String, bool>,
    ) -> Result<bool, StoreError> {
        if contains_folded(&r.customer, needle) || contains_folded(&r.channel_user, needle) {
            return Ok(true);
        }
        if let Some(known) = seen.get(&r.customer) {
            return Ok(*known);
        }
        let customer: Option<Customer> = self.get(CUSTOMERS, r.customer.as_bytes())?;
        let found = customer.is_some_and(|c| {
            [c.name.as_deref(), c.email.as_deref()]
                .into_iter()
                .flatten()
                .any(|v| contains_folded(v, needle))
        });
        seen.insert(r.customer.clone(), found);
        Ok(found)
    }
}

#[async_trait]
impl ConversationSearch for SledStore {
    async fn search_conversations(&self, query: &SearchQuery) -> Result<SearchResults, StoreError> {
        if query.problem().is_some() {
            return Ok(SearchResults::nothing());
        }
        let want = Folded::of(query);
        let mut complete = true;
        let mut customers = HashMap::new();
        let mut candidates: Vec<(DateTime<Utc>, ConversationId)> = Vec::new();
        for (n, kv) in self.trees[CONVERSATIONS].iter().enumerate() {
            if n >= SCAN_CONVERSATIONS {
                complete = false;
                break;
            }
            let (_, v) = kv?;
            let r: ConversationRecord = decode("conversation", &v)?;
            if !query.in_window(&r) {
                continue;
            }
            if let Some(needle) = &want.customer {
                if !self.customer_matches(&r, needle, &mut customers)? {
                    continue;
                }
            }
            candidates.push((r.updated, r.id));
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1 .0.cmp(&b.1 .0)));
        let mut hits = Vec::new();
        let mut budget = SCAN_MESSAGES;
        for (_, id) in candidates {
            if hits.len() >= query.limit {
                break;
            }
            let Some(r) = self.get::<ConversationRecord>(CONVERSATIONS, id.0.as_bytes())? else {
                continue;
            };
            if want.order.is_none() && want.text.is_none() {
                hits.push(SearchHit {
                    conversation: r,
                    snippet: None,
                });
                continue;
            }
            let slot_order = match (&want.order, r.slots.get("order")) {
                (Some(o), Some(slot)) => slot.eq_ignore_ascii_case(o),
                _ => false,
            };
            let (mut text_at, mut order_at) = (None, None);
            let mut prefix = id.0.as_bytes().to_vec();
            prefix.push(0);
            for kv in self.trees[MESSAGES].scan_prefix(&prefix) {
                if budget == 0 {
                    complete = false;
                    break;
                }
                budget -= 1;
                let (_, v) = kv?;
                let m: StoredMessage = decode("message", &v)?;
                if text_at.is_none()
                    && want
                        .text
                        .as_deref()
                        .is_some_and(|t| contains_folded(&m.text, t))
                {
                    text_at = Some(m.text.clone());
                }
                if order_at.is_none()
                    && want
                        .order
                        .as_deref()
                        .is_some_and(|o| mentions_order(&m.text, o))
                {
                    order_at = Some(m.text);
                }
                let text_done = want.text.is_none() || text_at.is_some();
                let order_done = want.order.is_none() || order_at.is_some();
                if text_done && order_done {
                    break;
                }
            }
            let text_ok = want.text.is_none() || text_at.is_some();
            let order_ok = want.order.is_none() || slot_order || order_at.is_some();
            if text_ok && order_ok {
                let snippet = text_at.or(order_at).map(|t| snippet(&t, query));
                hits.push(SearchHit {
                    conversation: r,
                    snippet,
                });
            }
            if budget == 0 {
                break;
            }
        }
        Ok(SearchResults { hits, complete })
    }
}
