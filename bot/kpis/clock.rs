//! What the KPIs take from the rules in force: each queue's SLA and opening hours.

use chrono::{DateTime, Utc};

use super::Settings;
use crate::policy::Rules;

/// The figures' settings under `rules`: each queue's SLA, the recontact window.
pub fn settings_of(rules: &Rules, recontact_hours: u32) -> Settings {
    Settings {
        recontact_hours: recontact_hours as i64,
        sla_secs: rules
            .queues
            .iter()
            .map(|(name, spec)| (name.clone(), spec.sla_secs))
            .collect(),
        ..Settings::default()
    }
}

/// Business seconds of each queue under `rules`: its opening hours when it has them, wall
/// time otherwise (a queue open around the clock, or one the rules no longer name).
pub fn business_clock(
    rules: &Rules,
) -> impl Fn(&str, DateTime<Utc>, DateTime<Utc>) -> i64 + Sync + '_ {
    move |queue, from, to| match rules.queues.get(queue).and_then(|q| q.hours.as_ref()) {
        Some(hours) => hours.business_secs_between(from, to),
        None => (to - from).num_seconds().max(0),
    }
}
