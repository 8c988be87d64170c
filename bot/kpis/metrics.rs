//! The KPIs on `/metrics`: every `kpis.metrics_every_secs` the report of the last
//! `kpis.metrics_window_hours` is computed and each figure set as a gauge
//! (`frontdesk_kpi{kpi, queue, window}` with its sample size in `frontdesk_kpi_samples`;
//! `queue="all"` for the whole desk). Every node computes them from the shared store, so any
//! node can be scraped.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::{business_clock, report, settings_of, Dimension, Query};
use crate::config::KpisConfig;
use crate::policy::Rules;
use crate::store::Store;

/// The rules in force when the figures are computed (each queue's SLA and hours).
pub type RulesNow = Arc<dyn Fn() -> Arc<Rules> + Send + Sync>;

/// Sets the gauges once; returns how many conversations were read.
pub async fn publish(
    store: &dyn Store,
    rules: &Rules,
    config: &KpisConfig,
) -> Result<usize, crate::store::StoreError> {
    let now = Utc::now();
    let window = format!("{}h", config.metrics_window_hours);
    let query = Query {
        since: now - chrono::Duration::hours(config.metrics_window_hours as i64),
        until: now,
        by: Some(Dimension::Queue),
        ..Default::default()
    };
    let settings = settings_of(rules, config.recontact_hours);
    let clock = business_clock(rules);
    let report = report(store, &query, &settings, &clock, now).await?;
    let groups = std::iter::once(("all", &report.kpis))
        .chain(report.groups.iter().map(|g| (g.key.as_str(), &g.kpis)));
    for (queue, kpis) in groups {
        for (kpi, figure) in kpis {
            crate::metrics::kpi(kpi, queue, &window, figure.value, figure.n);
        }
    }
    for (rule, figure) in &report.escalation_by_rule {
        crate::metrics::kpi_escalation_by_rule(rule, &window, figure.value);
    }
    Ok(report.kpis["conversations"].n)
}

/// Keeps the gauges current until `stopping` turns true.
pub fn spawn(
    store: Arc<dyn Store>,
    rules: RulesNow,
    config: KpisConfig,
    mut stopping: watch::Receiver<bool>,
) {
    if config.metrics_every_secs == 0 {
        return;
    }
    tokio::spawn(async move {
        loop {
            if let Err(e) = publish(store.as_ref(), &rules(), &config).await {
                tracing::warn!(error = %e, "the KPIs for /metrics could not be computed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(config.metrics_every_secs)) => {}
                _ = stopping.changed() => break,
            }
            if *stopping.borrow() {
                break;
            }
        }
    });
}
