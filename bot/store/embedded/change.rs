//! One [`Change`] as one sled transaction across every tree.

use super::*;

impl SledStore {
    /// Writes `change` as one sled transaction across the trees (outbox keys taken and
    /// committed under `outbox_commit`).
    pub(super) fn apply_change(&self, change: Change) -> Result<(), StoreError> {
        // Serialise outside the transaction closure: it may run more than once.
        let now = chrono::Utc::now();
        let inbound: Vec<_> = change
            .inbound
            .iter()
            .map(|(identity, id, outcome)| {
                let seen = SeenInbound {
                    outcome: outcome.clone(),
                    time: now,
                };
                (pair_key(&identity.key(), id), encode(&seen))
            })
            .collect();
        let parcels: Vec<_> = outgoing(&change, now)
            .iter()
            .map(|p| (lane(p.message.channel), encode(p)))
            .collect();
        // Keys are taken and committed under one lock (see `outbox_commit`).
        let mut commit_guard = (!parcels.is_empty())
            .then(|| self.outbox_commit.lock().unwrap_or_else(|e| e.into_inner()));
        let outbox: Vec<_> = parcels
            .into_iter()
            .map(|(lane, bytes)| (self.next_outbox_key(lane), bytes))
            .collect();
        let customers: Vec<_> = change
            .customers
            .iter()
            .map(|c| (c.id.clone().into_bytes(), encode(c)))
            .collect();
        let identities: Vec<_> = change
            .identities
            .iter()
            .map(|(i, c)| (i.key().into_bytes(), c.clone().into_bytes()))
            .collect();
        let conversations: Vec<_> = change
            .conversations
            .iter()
            .map(|c| (c.id.0.clone().into_bytes(), encode(c)))
            .collect();
        let messages: Vec<_> = change
            .messages
            .iter()
            .map(|(id, seq, m)| (message_key(id, *seq), encode(m)))
            .collect();
        let open: Vec<_> = change
            .open
            .iter()
            .map(|(i, c)| {
                (
                    i.key().into_bytes(),
                    c.as_ref().map(|c| c.0.clone().into_bytes()),
                )
            })
            .collect();
        let enqueue: Vec<_> = change
            .enqueue
            .iter()
            .map(|e| (pair_key(&e.queue, &e.conversation_id.0), encode(e)))
            .collect();
        let dequeue: Vec<_> = change
            .dequeue
            .iter()
            .map(|(q, c)| pair_key(q, &c.0))
            .collect();
        let assign: Vec<_> = change
            .assign
            .iter()
            .map(|(a, c)| pair_key(a, &c.0))
            .collect();
        let unassign: Vec<_> = change
            .unassign
            .iter()
            .map(|(a, c)| pair_key(a, &c.0))
            .collect();
        let awaiting: Vec<_> = change
            .awaiting
            .iter()
            .map(|(c, due)| (c.0.clone().into_bytes(), *due))
            .collect();

        let audit: Vec<_> = change
            .audit
            .iter()
            .map(|line| (Self::audit_key(line.time), encode(line)))
            .collect();

        let result: sled::transaction::TransactionResult<(), ()> =
            self.trees[..].transaction(|t| {
                for (k, v) in &customers {
                    t[CUSTOMERS].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &identities {
                    t[IDENTITIES].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &conversations {
                    t[CONVERSATIONS].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &messages {
                    t[MESSAGES].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &open {
                    match v {
                        Some(v) => t[OPEN].insert(k.as_slice(), v.as_slice())?,
                        None => t[OPEN].remove(k.as_slice())?,
                    };
                }
                for k in &dequeue {
                    t[QUEUE].remove(k.as_slice())?;
                }
                for (k, v) in &enqueue {
                    t[QUEUE].insert(k.as_slice(), v.as_slice())?;
                }
                for k in &unassign {
                    t[ASSIGNMENTS].remove(k.as_slice())?;
                }
                for k in &assign {
                    t[ASSIGNMENTS].insert(k.as_slice(), &[] as &[u8])?;
                }
                for (k, v) in &inbound {
                    t[INBOUND].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, due) in &awaiting {
                    match due {
                        true => t[AWAITING].insert(k.as_slice(), &[] as &[u8])?,
                        false => t[AWAITING].remove(k.as_slice())?,
                    };
                }
                for (k, v) in &outbox {
                    t[OUTBOX].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &audit {
                    // Two lines in the same nanosecond: the next free key.
                    let mut key = *k;
                    while t[AUDIT].get(key)?.is_some() {
                        key = (u64::from_be_bytes(key) + 1).to_be_bytes();
                    }
                    t[AUDIT].insert(&key, v.as_slice())?;
                }
                Ok(())
            });
        match result {
            Ok(()) => {
                if let Some(committed) = commit_guard.as_mut() {
                    **committed = self.next_outbox.load(Ordering::SeqCst);
                }
                drop(commit_guard);
                self.applied.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(sled::transaction::TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
            Err(sled::transaction::TransactionError::Abort(())) => {
                unreachable!("the transaction never aborts")
            }
        }
    }
}
