//! `frontdesk store copy`: moves every record from one store to another (sled to
//! PostgreSQL and back), then reads the target back and compares, table by table, the
//! count and a checksum of the records. A copy only goes into an empty store.

use super::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One table's figures on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub records: usize,
    /// Hex SHA-256 over the table's records (keys and canonical JSON values, in key order).
    pub checksum: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the target store already holds {0} records: copy only into an empty store (a new \
         database, or a data folder without a store), so nothing there is overwritten"
    )]
    NotEmpty(usize),
    #[error(
        "the copy differs from its source in table {table}: {source_count} records \
             (checksum {source_sum}) copied, {target_count} (checksum {target_sum}) read back"
    )]
    Differs {
        table: String,
        source_count: usize,
        source_sum: String,
        target_count: usize,
        target_sum: String,
    },
}

/// The value's JSON with object keys sorted, so that engines that store JSON differently
/// (PostgreSQL's jsonb reorders keys) checksum alike; plain strings stay as they are.
fn canonical(value: &str) -> String {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            let v = sort(v);
            // serde_json writes objects in map order; a BTreeMap gave them sorted keys.
            serde_json::to_string(&v).unwrap_or_else(|_| value.to_string())
        }
        _ => value.to_string(),
    }
}

/// Count and checksum per table of `records`.
pub fn summarise(records: &[Record]) -> Vec<TableCheck> {
    let mut tables: BTreeMap<&str, (usize, Sha256)> = BTreeMap::new();
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by(|a, b| (&a.table, &a.key).cmp(&(&b.table, &b.key)));
    for r in sorted {
        let (n, h) = tables
            .entry(r.table.as_str())
            .or_insert_with(|| (0, Sha256::new()));
        *n += 1;
        h.update(r.key.as_bytes());
        h.update([0]);
        h.update(canonical(&r.value).as_bytes());
        h.update([0]);
    }
    tables
        .into_iter()
        .map(|(table, (records, h))| TableCheck {
            table: table.to_string(),
            records,
            checksum: hex::encode(h.finalize()),
        })
        .collect()
}

/// Copies everything in `from` into the empty `to` and verifies it; returns the figures
/// per table. `progress` is told how many records were written so far (of the total).
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<Vec<TableCheck>, CopyError> {
    let existing = to.records().await?.len();
    if existing > 0 {
        return Err(CopyError::NotEmpty(existing));
    }
    let records = from.records().await?;
    let total = records.len();
    for (i, chunk) in records.chunks(1000).enumerate() {
        to.load(chunk).await?;
        progress((i * 1000 + chunk.len()).min(total), total);
    }
    to.flush().await?;
    let source = summarise(&records);
    let target = summarise(&to.records().await?);
    for s in &source {
        let t = target.iter().find(|t| t.table == s.table);
        if t != Some(s) {
            return Err(CopyError::Differs {
                table: s.table.clone(),
                source_count: s.records,
                source_sum: s.checksum.clone(),
                target_count: t.map_or(0, |t| t.records),
                target_sum: t.map_or_else(String::new, |t| t.checksum.clone()),
            });
        }
    }
    if let Some(extra) = target
        .iter()
        .find(|t| !source.iter().any(|s| s.table == t.table))
    {
        return Err(CopyError::Differs {
            table: extra.table.clone(),
            source_count: 0,
            source_sum: String::new(),
            target_count: extra.records,
            target_sum: extra.checksum.clone(),
        });
    }
    Ok(source)
}
