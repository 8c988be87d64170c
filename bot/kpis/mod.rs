//! The KPIs a support team runs on, over any period, queue, channel, intent, rule and
//! agent: containment, escalation rate (by rule), first response split bot / person, the
//! share of escalations a person answered within 2 minutes and within each queue's SLA
//! (business time), waiting and handle time, FCR, CSAT, NPS, sentiment at start and end.
//! Each figure carries its formula and sample size (`figures.rs`); the facts of each
//! conversation are read from its timeline and messages (`facts.rs`). Served as
//! `GET /api/v1/kpis` (JSON or CSV), drawn on the lead's dashboard (`page.rs`) and kept on
//! `/metrics` for the last 24 hours.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use crate::store::{Store, StoreError};

mod clock;
pub mod facts;
pub mod figures;
pub mod metrics;
pub mod page;
#[cfg(test)]
mod tests;

pub use clock::{business_clock, settings_of};
pub use facts::{BusinessClock, Facts};
pub use figures::{Figure, Settings};

/// At most this many conversations are read for one report (newest changed first); a
/// report that reached it says so (`truncated`).
pub const MAX_CONVERSATIONS: usize = 20_000;

/// What a report covers: conversations started in `[since, until)`, narrowed by the filters,
/// optionally split `by` one dimension.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub queue: Option<String>,
    pub channel: Option<String>,
    pub intent: Option<String>,
    pub rule: Option<String>,
    pub agent: Option<String>,
    pub by: Option<Dimension>,
}

/// What figures can be split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Queue,
    Channel,
    Intent,
    Rule,
    Agent,
}

impl std::str::FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queue" => Dimension::Queue,
            "channel" => Dimension::Channel,
            "intent" => Dimension::Intent,
            "rule" => Dimension::Rule,
            "agent" => Dimension::Agent,
            other => {
                return Err(format!(
                    "cannot split KPIs by {other:?}: use queue, channel, intent, rule or agent"
                ))
            }
        })
    }
}

impl Dimension {
    /// The keys a conversation belongs to under this dimension (a conversation escalated
    /// twice belongs to both queues; under `agent`, to the agent who handled it last).
    fn keys(self, f: &Facts) -> Vec<String> {
        match self {
            Dimension::Queue => f.queues.clone(),
            Dimension::Channel => vec![f.channel.to_string()],
            Dimension::Intent => f.intent.iter().cloned().collect(),
            Dimension::Rule => f.rules.clone(),
            Dimension::Agent => f.agents.last().cloned().into_iter().collect(),
        }
    }
}

impl Query {
    fn admits(&self, f: &Facts) -> bool {
        f.created >= self.since
            && f.created < self.until
            && self.queue.as_ref().is_none_or(|q| f.queues.contains(q))
            && self
                .channel
                .as_ref()
                .is_none_or(|c| f.channel.to_string() == *c)
            && self
                .intent
                .as_ref()
                .is_none_or(|i| f.intent.as_ref() == Some(i))
            && self.rule.as_ref().is_none_or(|r| f.rules.contains(r))
            && self.agent.as_ref().is_none_or(|a| f.agents.contains(a))
    }
}

/// One group of a split report.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub key: String,
    pub kpis: BTreeMap<&'static str, Figure>,
}

/// One step of the time series (an hour for periods up to three days, else a day).
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub conversations: usize,
    pub containment: Option<f64>,
    pub escalation_rate: Option<f64>,
    pub answered_within_2min: Option<f64>,
    pub csat: Option<f64>,
}

/// Counts per bin: `edges[i]..edges[i+1]`, the last bin open-ended.
#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    pub name: &'static str,
    pub unit: &'static str,
    pub edges: Vec<f64>,
    pub counts: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub generated: DateTime<Utc>,
    /// More conversations changed in the period than one report reads.
    pub truncated: bool,
    pub kpis: BTreeMap<&'static str, Figure>,
    pub escalation_by_rule: BTreeMap<String, Figure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Dimension>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    pub series: Vec<Bucket>,
    pub histograms: Vec<Histogram>,
}

/// Reads the conversations of `query`'s period from `store` and computes the report.
pub async fn report(
    store: &dyn Store,
    query: &Query,
    settings: &Settings,
    business: BusinessClock<'_>,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let records = store
        .conversations_since(query.since, MAX_CONVERSATIONS)
        .await?;
    let truncated = records.len() >= MAX_CONVERSATIONS;
    let mut all = Vec::with_capacity(records.len());
    for r in &records {
        // Only conversations of the period need their messages; the others are read for
        // recontacts (who, when started).
        let messages = if r.created >= query.since && r.created < query.until {
            store.messages(&r.id).await?
        } else {
            Vec::new()
        };
        all.push(Facts::read(r, &messages, now, business));
    }
    Ok(compute(&all, query, settings, now, truncated))
}

/// The report of `query` over conversations already read.
pub fn compute(
    all: &[Facts],
    query: &Query,
    settings: &Settings,
    now: DateTime<Utc>,
    truncated: bool,
) -> Report {
    let selected: Vec<&Facts> = all.iter().filter(|f| query.admits(f)).collect();
    let agent = query.agent.as_deref();
    let kpis = figures::figures(all, &selected, settings, agent, now);
    let groups = query
        .by
        .map(|by| {
            let mut keys: BTreeMap<String, Vec<&Facts>> = BTreeMap::new();
            for f in &selected {
                for k in by.keys(f) {
                    keys.entry(k).or_default().push(f);
                }
            }
            keys.into_iter()
                .map(|(key, members)| {
                    let agent = (by == Dimension::Agent).then_some(key.as_str()).or(agent);
                    Group {
                        kpis: figures::figures(all, &members, settings, agent, now),
                        key,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Report {
        since: query.since,
        until: query.until,
        generated: now,
        truncated,
        escalation_by_rule: figures::escalation_by_rule(&selected),
        kpis,
        by: query.by,
        groups,
        series: series(all, &selected, query, settings, now),
        histograms: histograms(&selected),
    }
}

fn series(
    all: &[Facts],
    selected: &[&Facts],
    query: &Query,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Vec<Bucket> {
    let span = query.until - query.since;
    let step = if span <= Duration::days(3) {
        Duration::hours(1)
    } else {
        Duration::days(1)
    };
    let Ok(mut start) = query.since.duration_trunc(step) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // At most a year of days or three days of hours.
    while start < query.until && out.len() < 400 {
        let end = start + step;
        let members: Vec<&Facts> = selected
            .iter()
            .copied()
            .filter(|f| f.created >= start && f.created < end)
            .collect();
        let k = figures::figures(all, &members, settings, query.agent.as_deref(), now);
        out.push(Bucket {
            start,
            conversations: members.len(),
            containment: k["containment"].value,
            escalation_rate: k["escalation_rate"].value,
            answered_within_2min: k["answered_within_2min"].value,
            csat: k["csat"].value,
        });
        start = end;
    }
    out
}

fn histograms(selected: &[&Facts]) -> Vec<Histogram> {
    let times = vec![0.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0];
    let answers: Vec<_> = selected
        .iter()
        .filter_map(|f| f.person_answer.as_ref())
        .collect();
    vec![
        histogram(
            "first_response_person_business_secs",
            "s",
            &times,
            answers
                .iter()
                .filter_map(|a| a.business_secs)
                .map(|s| s as f64),
        ),
        histogram(
            "waiting_secs",
            "s",
            &times,
            answers.iter().filter_map(|a| a.wait_secs).map(|s| s as f64),
        ),
        histogram(
            "handle_secs",
            "s",
            &[0.0, 60.0, 180.0, 300.0, 600.0, 1200.0, 3600.0],
            selected
                .iter()
                .flat_map(|f| f.spans.iter())
                .map(|s| s.secs as f64),
        ),
        histogram(
            "csat",
            "rating",
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            selected.iter().filter_map(|f| f.csat).map(f64::from),
        ),
    ]
}

fn histogram(
    name: &'static str,
    unit: &'static str,
    edges: &[f64],
    values: impl Iterator<Item = f64>,
) -> Histogram {
    let mut counts = vec![0; edges.len()];
    for v in values {
        let i = edges.iter().rposition(|e| v >= *e).unwrap_or(0);
        counts[i] += 1;
    }
    Histogram {
        name,
        unit,
        edges: edges.to_vec(),
        counts,
    }
}

/// The report as CSV: `scope,key,kpi,value,n,formula` (scope `all`, `rule` or the split's
/// dimension).
pub fn to_csv(report: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["scope", "key", "kpi", "value", "n", "formula"])?;
    let mut rows = |scope: &str, key: &str, kpis: &BTreeMap<&'static str, Figure>| {
        kpis.iter().try_for_each(|(name, f)| {
            let value = f.value.map(|v| format!("{v:.4}")).unwrap_or_default();
            w.write_record([scope, key, name, &value, &f.n.to_string(), &f.formula])
        })
    };
    rows("all", "", &report.kpis)?;
    let by = report.by.map(|d| {
        serde_json::to_value(d)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    });
    for g in &report.groups {
        rows(by.as_deref().unwrap_or(""), &g.key, &g.kpis)?;
    }
    for (rule, f) in &report.escalation_by_rule {
        let value = f.value.map(|v| format!("{v:.4}")).unwrap_or_default();
        w.write_record([
            "rule",
            rule,
            "escalation_rate",
            &value,
            &f.n.to_string(),
            &f.formula,
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
