//! Business hours of a queue: when its people work, in their own time zone, with whole days
//! off. Pure: the desk asks whether a queue is open, when it opens next (what the bot tells a
//! customer who writes at night), and how much opening time lies between two instants (the
//! SLA and the KPIs count business time only).
//!
//! In `rules.toml`, under a queue:
//! ```toml
//! [queues.general.hours]
//! timezone = "Europe/Berlin"                # an IANA name
//! mon = "09:00-17:30"                       # one or more ranges, "HH:MM-HH:MM" separated by ","
//! sat = "10:00-12:00,13:00-16:00"
//! sun = "closed"                            # a day left out is closed too
//! holidays = ["2026-12-25", "2026-12-26"]   # whole days closed, in that time zone
//! ```
//! Times are local wall-clock times: on the day the clocks change a day has 23 or 25 hours, a
//! range starting at a time the clock skips opens when the clock jumps, and a time that occurs
//! twice is taken the first time. "24:00" ends a range at midnight; a range over midnight is
//! written as two (`fri = "22:00-24:00"`, `sat = "00:00-02:00"`).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Ranges one day may have.
const MAX_RANGES_PER_DAY: usize = 12;
/// Holidays one queue may list (the work of `next_open` grows with them).
pub const MAX_HOLIDAYS: usize = 2_000;
/// `business_secs_between` counts at most this span: no wait is that long, and the work stays
/// bounded (one step per day) whatever the caller passes.
pub const MAX_SPAN_DAYS: i64 = 3_660;
/// The longest run of local times a clock change can skip (Samoa skipped a whole day in 2011).
const MAX_GAP_MINUTES: i64 = 48 * 60;
const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The hours as written in the rules file (strings), before they are checked.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSpec {
    pub timezone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sun: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
}

impl HoursSpec {
    fn days(&self) -> [&Option<String>; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }
}

/// What is wrong with an hours spec: the field (`timezone`, `mon`, `holidays`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct HoursError {
    pub field: &'static str,
    pub message: String,
}

/// A queue's opening hours, checked: see the module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HoursSpec", into = "HoursSpec")]
pub struct BusinessHours {
    zone: Tz,
    /// Per weekday, Monday first: opening ranges in minutes after local midnight, `[start,
    /// end)`, sorted and apart.
    week: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl TryFrom<HoursSpec> for BusinessHours {
    type Error = HoursError;

    fn try_from(spec: HoursSpec) -> Result<Self, HoursError> {
        BusinessHours::from_spec(&spec)
    }
}

impl From<BusinessHours> for HoursSpec {
    fn from(h: BusinessHours) -> HoursSpec {
        let day = |i: usize| {
            (!h.week[i].is_empty()).then(|| {
                h.week[i]
                    .iter()
                    .map(|&(s, e)| format!("{}-{}", clock(s), clock(e)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
        };
        HoursSpec {
            timezone: h.zone.name().to_string(),
            mon: day(0),
            tue: day(1),
            wed: day(2),
            thu: day(3),
            fri: day(4),
            sat: day(5),
            sun: day(6),
            holidays: h.holidays.iter().map(|d| d.to_string()).collect(),
        }
    }
}

impl BusinessHours {
    /// Checks a spec: a known time zone, well-formed ranges, real dates.
    pub fn from_spec(spec: &HoursSpec) -> Result<BusinessHours, HoursError> {
        let zone: Tz = spec.timezone.trim().parse().map_err(|_| HoursError {
            field: "timezone",
            message: format!(
                "\"{}\" is not a time zone: use an IANA name such as \"Europe/Berlin\", \
                 \"America/New_York\" or \"UTC\"",
                spec.timezone.chars().take(60).collect::<String>()
            ),
        })?;
        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        for (i, day) in spec.days().into_iter().enumerate() {
            if let Some(text) = day {
                week[i] = ranges(text).map_err(|message| HoursError {
                    field: DAY_KEYS[i],
                    message,
                })?;
            }
        }
        if spec.holidays.len() > MAX_HOLIDAYS {
            return Err(HoursError {
                field: "holidays",
                message: format!("lists {} days: at most {MAX_HOLIDAYS}", spec.holidays.len()),
            });
        }
        let mut holidays = BTreeSet::new();
        for d in &spec.holidays {
            let date = NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| HoursError {
                field: "holidays",
                message: format!(
                    "\"{}\" is not a date: write it as \"YYYY-MM-DD\", e.g. \"2026-12-25\"",
                    d.chars().take(40).collect::<String>()
                ),
            })?;
            holidays.insert(date);
        }
        Ok(BusinessHours {
            zone,
            week,
            holidays,
        })
    }

    /// The time zone's IANA name ("Europe/Berlin").
    pub fn timezone(&self) -> &'static str {
        self.zone.name()
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let Some(d0) = self.local_date(at) else {
            return false;
        };
        [d0.pred_opt(), Some(d0), d0.succ_opt()]
            .into_iter()
            .flatten()
            .any(|d| self.ranges_on(d).any(|(s, e)| s <= at && at < e))
    }

    /// `at` itself when open, else the next opening (None if never opens, e.g. no days).
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.week.iter().all(Vec::is_empty) {
            return None;
        }
        // Every run of closed days ends within a week of the last holiday in it.
        let days = 7 * (self.holidays.len() + 2) + 2;
        let mut d = self.local_date(at)?.pred_opt()?;
        for _ in 0..days {
            if let Some((s, _)) = self.ranges_on(d).find(|&(_, e)| e > at) {
                return Some(s.max(at));
            }
            d = d.succ_opt()?;
        }
        None
    }

    /// Seconds of opening time between `from` and `to` (0 when to <= from). Spans longer
    /// than [`MAX_SPAN_DAYS`] count as that long.
    pub fn business_secs_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let to = from
            .checked_add_signed(Duration::days(MAX_SPAN_DAYS))
            .map_or(to, |cap| to.min(cap));
        let (Some(first), Some(last)) = (self.local_date(from), self.local_date(to)) else {
            return 0;
        };
        let (Some(mut d), Some(last)) = (first.pred_opt(), last.succ_opt()) else {
            return 0;
        };
        let mut total = 0;
        while d <= last {
            for (s, e) in self.ranges_on(d) {
                let (a, b) = (s.max(from), e.min(to));
                if b > a {
                    total += (b - a).num_seconds();
                }
            }
            let Some(next) = d.succ_opt() else { break };
            d = next;
        }
        total
    }

    /// `at` as the queue's people say it: "Monday at 09:00", with the date when it is six
    /// days or more after `now` ("Tuesday 29 December at 09:00").
    pub fn describe(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.zone);
        let day = if at - now < Duration::days(6) {
            local.format("%A").to_string()
        } else {
            local.format("%A %-d %B").to_string()
        };
        format!("{day} at {}", local.format("%H:%M"))
    }

    fn local_date(&self, at: DateTime<Utc>) -> Option<NaiveDate> {
        // `with_timezone` panics only past chrono's range; keep a margin of a few days.
        let safe = at > DateTime::<Utc>::MIN_UTC + Duration::days(3)
            && at < DateTime::<Utc>::MAX_UTC - Duration::days(3);
        safe.then(|| at.with_timezone(&self.zone).date_naive())
    }

    /// The opening ranges of local date `d` as instants (none on a holiday).
    fn ranges_on(&self, d: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let day: &[(u16, u16)] = if self.holidays.contains(&d) {
            &[]
        } else {
            &self.week[d.weekday().num_days_from_monday() as usize]
        };
        day.iter().filter_map(move |&(s, e)| {
            let (s, e) = (self.instant(d, s)?, self.instant(d, e)?);
            (s < e).then_some((s, e))
        })
    }

    /// The instant local date `d` reaches `minute` minutes after its midnight: a time the
    /// clock skips is the moment it jumps; a time that occurs twice, the first one.
    fn instant(&self, d: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let local = d
            .and_time(NaiveTime::MIN)
            .checked_add_signed(Duration::minutes(minute.into()))?;
        (0..=MAX_GAP_MINUTES).find_map(|step| {
            let t = local.checked_add_signed(Duration::minutes(step))?;
            self.zone
                .from_local_datetime(&t)
                .earliest()
                .map(|at| at.with_timezone(&Utc))
        })
    }
}

/// "09:00-12:00,13:00-18:00" or "closed": sorted ranges in minutes.
fn ranges(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    if text.is_empty() {
        return Err("is empty: write \"closed\" or leave the day out for a closed day".into());
    }
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() > MAX_RANGES_PER_DAY {
        return Err(format!(
            "has {} ranges: at most {MAX_RANGES_PER_DAY}",
            parts.len()
        ));
    }
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let shown: String = part.trim().chars().take(30).collect();
        let bad = || {
            format!(
                "\"{shown}\" is not a range: write \"HH:MM-HH:MM\" (24-hour clock, e.g. \
                 \"09:00-17:30\"), several separated by \",\", or \"closed\""
            )
        };
        let (a, b) = part.trim().split_once('-').ok_or_else(bad)?;
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        if start >= end {
            return Err(format!(
                "\"{shown}\" ends before it starts: a range over midnight is two ranges, \
                 \"22:00-24:00\" on one day and \"00:00-02:00\" on the next"
            ));
        }
        out.push((start, end));
    }
    out.sort_unstable();
    for pair in out.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(format!(
                "has ranges that overlap ({}-{} and {}-{}): write each time once",
                clock(pair[0].0),
                clock(pair[0].1),
                clock(pair[1].0),
                clock(pair[1].1)
            ));
        }
    }
    Ok(out)
}

/// "09:30" → 570; "24:00" → 1440; anything else → None.
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// 570 → "09:30".
fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
#[path = "hours_tests.rs"]
mod tests;
