//! Grouping the unanswered messages: near-duplicates folded ([`distinct`]), then the
//! different texts clustered by their embeddings with average linkage ([`group`]). Pure and
//! deterministic: the same messages, in any order, give the same groups and ids.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{normalise, Failure, Unanswered, EXAMPLES};

/// Messages the bot could not answer that are about the same thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Stable for the same members: a hash of their normalised texts, sorted.
    pub id: String,
    /// Messages, near-duplicates included.
    pub count: usize,
    /// Up to [`EXAMPLES`] different texts, most central first.
    pub examples: Vec<String>,
    pub kinds: Vec<Failure>,
    pub last_seen: DateTime<Utc>,
    /// Every different text, most central first (the new intent's examples).
    #[serde(skip)]
    pub texts: Vec<String>,
}

/// Messages that read the same once normalised ([`normalise`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Distinct {
    pub key: String,
    /// The newest wording, its spaces folded.
    pub text: String,
    pub count: usize,
    pub last_seen: DateTime<Utc>,
    pub kinds: BTreeSet<Failure>,
}

/// Folds near-duplicates; ordered by normalised text, so the input's order does not matter.
pub fn distinct(messages: &[Unanswered]) -> Vec<Distinct> {
    let mut by_key: BTreeMap<String, Distinct> = BTreeMap::new();
    for m in messages {
        let key = normalise(&m.text);
        if key.is_empty() {
            continue;
        }
        let text = m.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let d = by_key.entry(key.clone()).or_insert_with(|| Distinct {
            key,
            text: text.clone(),
            count: 0,
            last_seen: m.time,
            kinds: BTreeSet::new(),
        });
        d.count += 1;
        if m.time > d.last_seen || (m.time == d.last_seen && text < d.text) {
            d.last_seen = m.time;
            d.text = text;
        }
        d.kinds.extend(m.kinds.iter().copied());
    }
    by_key.into_values().collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v.to_vec()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Groups `items` (from [`distinct`]) whose embeddings are `vectors` (same order, same
/// length) at cosine `similar` ([`average_linkage`]); largest groups first.
pub fn group(items: &[Distinct], vectors: &[Vec<f32>], similar: f32) -> Vec<Group> {
    let n = items.len().min(vectors.len());
    let units: Vec<Vec<f32>> = vectors[..n].iter().map(|v| unit(v)).collect();
    let mut groups: Vec<Group> = average_linkage(&units, similar)
        .into_iter()
        .map(|members| make_group(items, &units, members))
        .collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.cmp(&b.id))
    });
    groups
}

/// Agglomerative clustering with average linkage: the two clusters whose texts are the
/// most similar on average (mean cosine over every pair across them) merge, again and
/// again, while that mean is at least `similar`. Ties go to the lowest indices, so the same
/// input always gives the same clusters. Each row's best partner is cached; a merge can
/// only lower the similarity to the merged cluster (a weighted mean of the two), so a
/// cached best that named either of them is an upper bound, refreshed only when it comes
/// out on top.
fn average_linkage(units: &[Vec<f32>], similar: f32) -> Vec<Vec<usize>> {
    let n = units.len();
    let mut sim = vec![0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let c = dot(&units[i], &units[j]);
            sim[i * n + j] = c;
            sim[j * n + i] = c;
        }
    }
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let mut active = vec![true; n];
    let best_of = |sim: &[f32], active: &[bool], i: usize| {
        (0..n)
            .filter(|&k| k != i && active[k])
            .map(|k| (sim[i * n + k], k))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
    };
    let mut best: Vec<Option<(f32, usize)>> = (0..n).map(|i| best_of(&sim, &active, i)).collect();
    let mut stale = vec![false; n];
    loop {
        let top = (0..n)
            .filter_map(|i| best[i].filter(|_| active[i]).map(|b| (i, b)))
            .max_by(|a, b| (a.1).0.total_cmp(&(b.1).0).then(b.0.cmp(&a.0)));
        let Some((row, (value, other))) = top else {
            break;
        };
        if stale[row] {
            best[row] = best_of(&sim, &active, row);
            stale[row] = false;
            continue;
        }
        if value < similar {
            break;
        }
        let (i, j) = (row.min(other), row.max(other));
        let (ni, nj) = (members[i].len() as f32, members[j].len() as f32);
        for k in (0..n).filter(|&k| active[k] && k != i && k != j) {
            let v = (ni * sim[i * n + k] + nj * sim[j * n + k]) / (ni + nj);
            sim[i * n + k] = v;
            sim[k * n + i] = v;
        }
        let moved = std::mem::take(&mut members[j]);
        members[i].extend(moved);
        active[j] = false;
        best[j] = None;
        best[i] = best_of(&sim, &active, i);
        stale[i] = false;
        for k in (0..n).filter(|&k| active[k] && k != i) {
            match best[k] {
                Some((_, b)) if b == i || b == j => stale[k] = true,
                Some((v, b)) => {
                    let c = sim[k * n + i];
                    if c > v || (c == v && i < b) {
                        best[k] = Some((c, i));
                    }
                }
                None => best[k] = Some((sim[k * n + i], i)),
            }
        }
    }
    members.into_iter().filter(|m| !m.is_empty()).collect()
}

fn make_group(items: &[Distinct], units: &[Vec<f32>], mut members: Vec<usize>) -> Group {
    let width = units.first().map_or(0, Vec::len);
    let mut centroid = vec![0f32; width];
    for &m in &members {
        for (c, x) in centroid.iter_mut().zip(&units[m]) {
            *c += x * items[m].count as f32;
        }
    }
    let centroid = unit(&centroid);
    members.sort_by(|&a, &b| {
        dot(&units[b], &centroid)
            .total_cmp(&dot(&units[a], &centroid))
            .then(items[a].key.cmp(&items[b].key))
    });
    let mut keys: Vec<&str> = members.iter().map(|&m| items[m].key.as_str()).collect();
    keys.sort_unstable();
    let id = hex::encode(&Sha256::digest(keys.join("\n").as_bytes())[..6]);
    let texts: Vec<String> = members.iter().map(|&m| items[m].text.clone()).collect();
    Group {
        id,
        count: members.iter().map(|&m| items[m].count).sum(),
        examples: texts.iter().take(EXAMPLES).cloned().collect(),
        kinds: members
            .iter()
            .flat_map(|&m| items[m].kinds.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        last_seen: members
            .iter()
            .map(|&m| items[m].last_seen)
            .max()
            .unwrap_or_default(),
        texts,
    }
}
