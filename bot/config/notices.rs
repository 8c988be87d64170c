//! `[notices]`: the shop's proactive notices (`crate::notices`): quiet hours, the
//! per-customer cap. Checked while the file is read, so a bad window or zone names its key.

use serde::{Deserialize, Serialize};

/// Notices the shop sends through `POST /api/v1/events` (order delayed, shipped, refund
/// issued, back in stock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawNotices")]
pub struct NoticesConfig {
    /// Off: every event is answered `{"sent": false}` and nothing reaches a customer.
    pub enabled: bool,
    /// A local time window, `"HH:MM-HH:MM"` (it may run past midnight, `"21:00-08:00"`),
    /// in which no notice is sent: each is held and sent when the window ends. Empty: none.
    pub quiet_hours: String,
    /// The IANA time zone of `quiet_hours`, e.g. `Europe/London`.
    pub time_zone: String,
    /// Notices one customer gets in 24 hours at most; more are not sent (the shop is told).
    pub max_per_day: u32,
}

impl Default for NoticesConfig {
    fn default() -> Self {
        NoticesConfig {
            enabled: true,
            quiet_hours: "21:00-08:00".into(),
            time_zone: "Europe/London".into(),
            max_per_day: 3,
        }
    }
}

/// A quiet window of local times: `start` inclusive, `end` exclusive; `start > end` runs
/// past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietWindow {
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
}

impl QuietWindow {
    /// Reads `"21:00-08:00"`; `None` for an empty text.
    pub fn parse(text: &str) -> Result<Option<QuietWindow>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || {
            format!(
                "{text:?} is not a window: write \"HH:MM-HH:MM\" in 24-hour time, for example \
                 \"21:00-08:00\", or \"\" for no quiet hours"
            )
        };
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let time =
            |s: &str| chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err(format!(
                "{text:?} starts and ends at the same time: leave it empty for no quiet hours"
            ));
        }
        Ok(Some(QuietWindow { start, end }))
    }

    /// Whether local time `t` is inside the window.
    pub fn contains(&self, t: chrono::NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

impl NoticesConfig {
    /// The quiet window (already checked when the configuration was read).
    pub fn quiet_window(&self) -> Option<QuietWindow> {
        QuietWindow::parse(&self.quiet_hours).ok().flatten()
    }

    /// The time zone of the quiet hours (already checked; UTC if it somehow is not).
    pub fn zone(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// `[notices]` as written, before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNotices {
    enabled: bool,
    quiet_hours: String,
    time_zone: String,
    max_per_day: u32,
}

impl Default for RawNotices {
    fn default() -> Self {
        let d = NoticesConfig::default();
        RawNotices {
            enabled: d.enabled,
            quiet_hours: d.quiet_hours,
            time_zone: d.time_zone,
            max_per_day: d.max_per_day,
        }
    }
}

impl TryFrom<RawNotices> for NoticesConfig {
    type Error = String;

    fn try_from(raw: RawNotices) -> Result<Self, String> {
        QuietWindow::parse(&raw.quiet_hours).map_err(|e| format!("notices.quiet_hours: {e}"))?;
        if raw.time_zone.trim().parse::<chrono_tz::Tz>().is_err() {
            return Err(format!(
                "notices.time_zone: {:?} is not a time zone: write an IANA name such as \
                 \"Europe/London\" or \"UTC\"",
                raw.time_zone
            ));
        }
        if !(1..=50).contains(&raw.max_per_day) {
            return Err(
                "notices.max_per_day: must be 1 to 50 (turn notices off with enabled = false)"
                    .into(),
            );
        }
        Ok(NoticesConfig {
            enabled: raw.enabled,
            quiet_hours: raw.quiet_hours.trim().to_string(),
            time_zone: raw.time_zone.trim().to_string(),
            max_per_day: raw.max_per_day,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_read_back_and_a_window_may_run_past_midnight() {
        let c: NoticesConfig = toml::from_str("").unwrap();
        assert_eq!(c, NoticesConfig::default());
        let w = c.quiet_window().unwrap();
        let at = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(w.contains(at(23, 0)) && w.contains(at(2, 0)) && w.contains(at(21, 0)));
        assert!(!w.contains(at(8, 0)) && !w.contains(at(12, 0)));
        let day = QuietWindow::parse("12:00-13:30").unwrap().unwrap();
        assert!(day.contains(at(12, 30)) && !day.contains(at(13, 30)));
        assert_eq!(QuietWindow::parse(" ").unwrap(), None);
    }

    #[test]
    fn bad_values_name_their_key_and_what_to_write() {
        let e = toml::from_str::<NoticesConfig>("quiet_hours = \"9pm-8am\"").unwrap_err();
        assert!(e.to_string().contains("notices.quiet_hours"), "{e}");
        assert!(e.to_string().contains("HH:MM-HH:MM"), "{e}");
        let e = toml::from_str::<NoticesConfig>("time_zone = \"Mars/Olympus\"").unwrap_err();
        assert!(e.to_string().contains("notices.time_zone"), "{e}");
        let e = toml::from_str::<NoticesConfig>("max_per_day = 0").unwrap_err();
        assert!(e.to_string().contains("notices.max_per_day"), "{e}");
        let e = toml::from_str::<NoticesConfig>("quiet = \"x\"").unwrap_err();
        assert!(e.to_string().contains("quiet"), "{e}");
    }
}
