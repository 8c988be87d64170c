//! One [`Change`] as one PostgreSQL transaction: every statement prepared once per
//! connection and sent pipelined (one round trip for the lot, in order), then the commit.

use super::*;
use futures::future::try_join_all;

/// Whether a failed transaction may simply be run again (deadlock, serialisation).
pub(super) fn retryable(error: &str) -> bool {
    error.contains("(40P01)") || error.contains("(40001)")
}

/// `change` with the rows of each table sorted by key, the relative order of writes to one
/// key kept (the last write of a key wins, as in one sled transaction).
pub(super) fn in_key_order(mut change: Change) -> Change {
    change.customers.sort_by(|a, b| a.id.cmp(&b.id));
    change.identities.sort_by_key(|(i, _)| i.key());
    change.conversations.sort_by(|a, b| a.id.0.cmp(&b.id.0));
    change
        .messages
        .sort_by(|a, b| (&a.0 .0, a.1).cmp(&(&b.0 .0, b.1)));
    change.open.sort_by_key(|(i, _)| i.key());
    change
}

type Value = Box<dyn ToSql + Sync + Send>;

/// The statements of a change, in the order they run.
#[derive(Default)]
struct Statements(Vec<(&'static str, Vec<Value>)>);

impl Statements {
    fn push(&mut self, sql: &'static str, params: Vec<Value>) {
        self.0.push((sql, params));
    }
}

fn text(s: &str) -> Value {
    Box::new(s.to_string())
}

/// The SQL of `change`, and the channels it queues outbox records for.
fn statements(change: &Change, now: DateTime<Utc>) -> (Statements, Vec<ChannelKind>) {
    let mut out = Statements::default();
    for c in &change.customers {
        out.push(
            "INSERT INTO customers (id, shop_customer_id, body) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET shop_customer_id = $2, body = $3",
            vec![
                text(&c.id),
                Box::new(c.shop_customer_id.clone()),
                Box::new(json(c)),
            ],
        );
    }
    for (identity, customer) in &change.identities {
        out.push(
            "INSERT INTO identities (identity, customer_id) VALUES ($1, $2)
             ON CONFLICT (identity) DO UPDATE SET customer_id = $2",
            vec![text(&identity.key()), text(customer)],
        );
    }
    for c in &change.conversations {
        out.push(
            "INSERT INTO conversations (id, customer_id, identity, status, updated, body)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET customer_id = $2, identity = $3,
                 status = $4, updated = $5, body = $6",
            vec![
                text(&c.id.0),
                text(&c.customer),
                text(&c.identity().key()),
                text(c.status.as_str()),
                Box::new(c.updated),
                Box::new(json(c)),
            ],
        );
    }
    for (id, seq, m) in &change.messages {
        out.push(
            "INSERT INTO messages (conversation_id, seq, body) VALUES ($1, $2, $3)
             ON CONFLICT (conversation_id, seq) DO UPDATE SET body = $3",
            vec![text(&id.0), Box::new(*seq as i64), Box::new(json(m))],
        );
    }
    for (identity, conversation) in &change.open {
        match conversation {
            Some(c) => out.push(
                "INSERT INTO open (identity, conversation_id) VALUES ($1, $2)
                 ON CONFLICT (identity) DO UPDATE SET conversation_id = $2",
                vec![text(&identity.key()), text(&c.0)],
            ),
            None => out.push(
                "DELETE FROM open WHERE identity = $1",
                vec![text(&identity.key())],
            ),
        }
    }
    for (queue, c) in &change.dequeue {
        out.push(
            "DELETE FROM queue WHERE queue = $1 AND conversation_id = $2",
            vec![text(queue), text(&c.0)],
        );
    }
    for e in &change.enqueue {
        out.push(
            "INSERT INTO queue (queue, conversation_id, body) VALUES ($1, $2, $3)
             ON CONFLICT (queue, conversation_id) DO UPDATE SET body = $3",
            vec![
                text(&e.queue),
                text(&e.conversation_id.0),
                Box::new(json(e)),
            ],
        );
    }
    for (agent, c) in &change.unassign {
        out.push(
            "DELETE FROM assignments WHERE agent = $1 AND conversation_id = $2",
            vec![text(agent), text(&c.0)],
        );
    }
    for (agent, c) in &change.assign {
        out.push(
            "INSERT INTO assignments (agent, conversation_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            vec![text(agent), text(&c.0)],
        );
    }
    for (identity, id, outcome) in &change.inbound {
        let seen = SeenInbound {
            outcome: outcome.clone(),
            time: now,
        };
        out.push(
            "INSERT INTO inbound (identity, message_id, time, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (identity, message_id) DO UPDATE SET time = $3, body = $4",
            vec![
                text(&identity.key()),
                text(id),
                Box::new(now),
                Box::new(json(&seen)),
            ],
        );
    }
    for (c, due) in &change.awaiting {
        let sql = match due {
            true => "INSERT INTO awaiting (conversation_id) VALUES ($1) ON CONFLICT DO NOTHING",
            false => "DELETE FROM awaiting WHERE conversation_id = $1",
        };
        out.push(sql, vec![text(&c.0)]);
    }
    let mut channels = Vec::new();
    for parcel in outgoing(change, now) {
        let m = &parcel.message;
        out.push(
            "INSERT INTO outbox (channel, conversation_id, identity, body) VALUES ($1, $2, $3, $4)",
            vec![
                text(m.channel.as_str()),
                text(&m.conversation_id.0),
                text(&Identity::new(m.channel, &m.channel_user).key()),
                Box::new(json(&parcel)),
            ],
        );
        if !channels.contains(&m.channel) {
            channels.push(m.channel);
            // Delivered at commit, to every node: the courier of the channel may run on
            // another one.
            out.push(
                "SELECT pg_notify($1, $2)",
                vec![
                    text(super::outbox::OUTBOX_NOTICES),
                    text(m.channel.as_str()),
                ],
            );
        }
    }
    for line in &change.audit {
        out.push(
            "INSERT INTO audit (nanos, body) VALUES ($1, $2)",
            vec![Box::new(access::nanos(line.time)), Box::new(json(line))],
        );
    }
    (out, channels)
}

impl PgStore {
    /// Writes `change` in one transaction; returns the channels it queued outbox records
    /// for.
    pub(super) async fn apply_change(
        &self,
        change: &Change,
    ) -> Result<Vec<ChannelKind>, StoreError> {
        let (statements, channels) = statements(change, Utc::now());
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut prepared = Vec::with_capacity(statements.0.len());
        for (sql, _) in &statements.0 {
            prepared.push(tx.prepare_cached(sql).await?);
        }
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = statements
            .0
            .iter()
            .map(|(_, values)| {
                values
                    .iter()
                    .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                    .collect()
            })
            .collect();
        // Sent in order on the one connection without waiting for each answer.
        try_join_all(
            prepared
                .iter()
                .zip(&params)
                .map(|(statement, params)| tx.execute(statement, params)),
        )
        .await?;
        tx.commit().await?;
        Ok(channels)
    }
}
