//! The PostgreSQL tables as engine-neutral [`Record`]s (what `store copy` moves), and back.
//! Keys are the text of [`TABLES`]' comments; values the JSON as the Rust types write it.

use super::*;

/// For each table: the query that lists it as (key, value) text, in key order.
const LIST: [(&str, &str); 19] = [
    ("customers", "SELECT id, body::text FROM customers"),
    ("identities", "SELECT identity, customer_id FROM identities"),
    ("conversations", "SELECT id, body::text FROM conversations"),
    (
        "messages",
        "SELECT conversation_id || E'\\t' || lpad(seq::text, 20, '0'), body::text FROM messages",
    ),
    ("open", "SELECT identity, conversation_id FROM open"),
    (
        "queue",
        "SELECT queue || E'\\t' || conversation_id, body::text FROM queue",
    ),
    (
        "assignments",
        "SELECT agent || E'\\t' || conversation_id, '' FROM assignments",
    ),
    ("link_codes", "SELECT code, body::text FROM link_codes"),
    (
        "outbox",
        "SELECT channel || E'\\t' || lpad(id::text, 20, '0'), body::text FROM outbox",
    ),
    (
        "outbox_failed",
        "SELECT channel || E'\\t' || lpad(id::text, 20, '0'), body::text FROM outbox_failed",
    ),
    (
        "channel_state",
        "SELECT channel || E'\\t' || key, value FROM channel_state",
    ),
    ("api_keys", "SELECT id, body::text FROM api_keys"),
    ("sessions", "SELECT id, body::text FROM sessions"),
    (
        "audit",
        "SELECT lpad((nanos + row_number() OVER (PARTITION BY nanos ORDER BY seq) - 1)::text,
                20, '0'), body::text FROM audit",
    ),
    (
        "link_attempts",
        "SELECT key, times::text FROM link_attempts",
    ),
    (
        "inbound",
        "SELECT identity || E'\\t' || message_id, body::text FROM inbound",
    ),
    ("awaiting", "SELECT conversation_id, '' FROM awaiting"),
    ("settings", "SELECT name, value FROM settings"),
    (
        "versions",
        "SELECT kind || E'\\t' || lpad(id::text, 20, '0'), body::text FROM versions",
    ),
];

fn bad(r: &Record, why: &str) -> StoreError {
    StoreError::Corrupt {
        what: format!("record {}/{:?}", r.table, r.key),
        source: serde::de::Error::custom(why),
    }
}

fn value(r: &Record) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(&r.value).map_err(|source| StoreError::Corrupt {
        what: format!("record {}/{:?}", r.table, r.key),
        source,
    })
}

fn pair(r: &Record) -> Result<(&str, &str), StoreError> {
    r.key
        .split_once('\t')
        .ok_or_else(|| bad(r, "a key of two parts"))
}

fn number(r: &Record, text: &str) -> Result<i64, StoreError> {
    text.parse().map_err(|_| bad(r, "a number"))
}

impl PgStore {
    pub(super) async fn all_records(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        for (table, sql) in LIST {
            for row in self.rows(sql, &[]).await? {
                out.push(Record {
                    table: table.to_string(),
                    key: row.get(0),
                    value: row.get(1),
                });
            }
        }
        out.sort_by(|a, b| (&a.table, &a.key).cmp(&(&b.table, &b.key)));
        Ok(out)
    }

    pub(super) async fn load_records(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for r in records {
            let k = r.key.as_str();
            match r.table.as_str() {
                "customers" => {
                    let v = value(r)?;
                    let shop = v.get("shop_customer_id").and_then(|s| s.as_str());
                    tx.execute(
                        "INSERT INTO customers (id, shop_customer_id, body) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET shop_customer_id = $2, body = $3",
                        &[&k, &shop, &Json(&v)],
                    )
                    .await?
                }
                "identities" => {
                    tx.execute(
                        "INSERT INTO identities VALUES ($1, $2)
                         ON CONFLICT (identity) DO UPDATE SET customer_id = $2",
                        &[&k, &r.value],
                    )
                    .await?
                }
                "conversations" => {
                    let c: ConversationRecord = from_json("conversations", value(r)?)?;
                    tx.execute(
                        "INSERT INTO conversations VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (id) DO UPDATE SET customer_id = $2, identity = $3,
                             status = $4, updated = $5, body = $6",
                        &[
                            &k,
                            &c.customer,
                            &c.identity().key(),
                            &c.status.as_str(),
                            &c.updated,
                            &Json(value(r)?),
                        ],
                    )
                    .await?
                }
                "messages" => {
                    let (id, seq) = pair(r)?;
                    tx.execute(
                        "INSERT INTO messages VALUES ($1, $2, $3)
                         ON CONFLICT (conversation_id, seq) DO UPDATE SET body = $3",
                        &[&id, &number(r, seq)?, &Json(value(r)?)],
                    )
                    .await?
                }
                "open" => {
                    tx.execute(
                        "INSERT INTO open VALUES ($1, $2)
                         ON CONFLICT (identity) DO UPDATE SET conversation_id = $2",
                        &[&k, &r.value],
                    )
                    .await?
                }
                "queue" => {
                    let (queue, id) = pair(r)?;
                    tx.execute(
                        "INSERT INTO queue VALUES ($1, $2, $3)
                         ON CONFLICT (queue, conversation_id) DO UPDATE SET body = $3",
                        &[&queue, &id, &Json(value(r)?)],
                    )
                    .await?
                }
                "assignments" => {
                    let (agent, id) = pair(r)?;
                    tx.execute(
                        "INSERT INTO assignments VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[&agent, &id],
                    )
                    .await?
                }
                "link_codes" => {
                    let link: LinkCode = from_json("link_codes", value(r)?)?;
                    tx.execute(
                        "INSERT INTO link_codes VALUES ($1, $2, $3, $4)
                         ON CONFLICT (code) DO UPDATE SET body = $4",
                        &[&k, &link.identity.key(), &link.expires, &Json(value(r)?)],
                    )
                    .await?
                }
                table @ ("outbox" | "outbox_failed") => {
                    let (channel, id) = pair(r)?;
                    let id = number(r, id)?;
                    #[derive(Deserialize)]
                    struct Entry {
                        message: Outbound,
                    }
                    let entry: Entry = from_json(table, value(r)?)?;
                    let m = &entry.message;
                    let identity = Identity::new(m.channel, &m.channel_user).key();
                    let sql = match table {
                        "outbox" => {
                            "INSERT INTO outbox VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT (id) DO UPDATE SET body = $5"
                        }
                        _ => {
                            "INSERT INTO outbox_failed VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT (id) DO UPDATE SET body = $5"
                        }
                    };
                    tx.execute(
                        sql,
                        &[&id, &channel, &m.conversation_id.0, &identity, &Json(value(r)?)],
                    )
                    .await?
                }
                "channel_state" => {
                    let (channel, key) = pair(r)?;
                    tx.execute(
                        "INSERT INTO channel_state VALUES ($1, $2, $3)
                         ON CONFLICT (channel, key) DO UPDATE SET value = $3",
                        &[&channel, &key, &r.value],
                    )
                    .await?
                }
                "api_keys" => {
                    tx.execute(
                        "INSERT INTO api_keys VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = $2",
                        &[&k, &Json(value(r)?)],
                    )
                    .await?
                }
                "sessions" => {
                    let s: SessionRecord = from_json("sessions", value(r)?)?;
                    tx.execute(
                        "INSERT INTO sessions VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET expires = $2, body = $3",
                        &[&k, &s.expires, &Json(value(r)?)],
                    )
                    .await?
                }
                "audit" => {
                    tx.execute(
                        "INSERT INTO audit (nanos, body) VALUES ($1, $2)",
                        &[&number(r, k)?, &Json(value(r)?)],
                    )
                    .await?
                }
                "link_attempts" => {
                    let times: Vec<DateTime<Utc>> = from_json("link_attempts", value(r)?)?;
                    let newest = times.iter().max().copied().unwrap_or_else(Utc::now);
                    tx.execute(
                        "INSERT INTO link_attempts VALUES ($1, $2, $3)
                         ON CONFLICT (key) DO UPDATE SET times = $2, newest = $3",
                        &[&k, &Json(value(r)?), &newest],
                    )
                    .await?
                }
                "inbound" => {
                    let (identity, id) = pair(r)?;
                    let seen: SeenInbound = from_json("inbound", value(r)?)?;
                    tx.execute(
                        "INSERT INTO inbound VALUES ($1, $2, $3, $4)
                         ON CONFLICT (identity, message_id) DO UPDATE SET body = $4",
                        &[&identity, &id, &seen.time, &Json(value(r)?)],
                    )
                    .await?
                }
                "awaiting" => {
                    tx.execute(
                        "INSERT INTO awaiting VALUES ($1) ON CONFLICT DO NOTHING",
                        &[&k],
                    )
                    .await?
                }
                "settings" => {
                    tx.execute(
                        "INSERT INTO settings VALUES ($1, $2)
                         ON CONFLICT (name) DO UPDATE SET value = $2",
                        &[&k, &r.value],
                    )
                    .await?
                }
                "versions" => {
                    let (kind, id) = pair(r)?;
                    tx.execute(
                        "INSERT INTO versions VALUES ($1, $2, $3)
                         ON CONFLICT (kind, id) DO UPDATE SET body = $3",
                        &[&kind, &number(r, id)?, &Json(value(r)?)],
                    )
                    .await?
                }
                _ => return Err(bad(r, "not a table of this version")),
            };
        }
        // New outbox records are numbered after the copied ones.
        tx.execute(
            "SELECT setval('outbox_ids', greatest(
                 (SELECT coalesce(max(id), 0) FROM outbox),
                 (SELECT coalesce(max(id), 0) FROM outbox_failed), 1))",
            &[],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
