//! Quiet hours (`notices.quiet_hours` in `notices.time_zone`): a notice that comes in them is
//! held on the customer's conversation and sent when they end, by the task
//! [`spawn_release`] starts (every node runs one; each held notice goes out once, under its
//! conversation's lock). Held, not skipped: the shop sends an event once, and a delay told
//! at 08:00 is still worth telling.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::config::NoticesConfig;
use crate::desk::Desk;

/// `date` at local time `t` in `tz`, as UTC: the first of two in a repeated hour, and the
/// first minute after a skipped one.
fn at_local(tz: chrono_tz::Tz, date: NaiveDate, t: chrono::NaiveTime) -> DateTime<Utc> {
    let mut local = date.and_time(t);
    for _ in 0..4 {
        if let Some(when) = tz.from_local_datetime(&local).earliest() {
            return when.with_timezone(&Utc);
        }
        local += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_time(t))
}

/// When the quiet hours around `now` end, if `now` is inside them.
pub fn quiet_until(config: &NoticesConfig, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let window = config.quiet_window()?;
    let tz = config.zone();
    let local = now.with_timezone(&tz);
    if !window.contains(local.time()) {
        return None;
    }
    Some(next_quiet_end(config, now).unwrap_or(now))
}

/// The first end of quiet hours after `now` (`None` without quiet hours).
pub fn next_quiet_end(config: &NoticesConfig, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let window = config.quiet_window()?;
    let tz = config.zone();
    let today = now.with_timezone(&tz).date_naive();
    (0..3)
        .map(|d| at_local(tz, today + chrono::Days::new(d), window.end))
        .find(|end| *end > now)
}

/// Releases the held notices now (all of them, unless quiet hours still run) and again at
/// every end of quiet hours, until `stopping` turns true. Needs a tokio runtime; without
/// one (a router built outside it) nothing is started.
pub fn spawn_release(
    desk: Desk,
    config: NoticesConfig,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no runtime: held notices are released by the next server start");
        return;
    };
    runtime.spawn(async move {
        loop {
            let now = Utc::now();
            let quiet = quiet_until(&config, now).is_some();
            match crate::desk::notice::release_held(&desk, now, !quiet).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sent = n, "held notices sent"),
                Err(e) => tracing::warn!(error = %e, "held notices not released yet"),
            }
            // A few seconds past the end, so the window is over on every clock.
            let wait = next_quiet_end(&config, now)
                .map(|end| {
                    (end - now + Duration::seconds(5))
                        .to_std()
                        .unwrap_or_default()
                })
                .unwrap_or(std::time::Duration::from_secs(24 * 3600));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(&mut stopping) => return,
            }
        }
    });
}

/// Resolves once `stopping` turns true (or its sender is gone).
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}
