//! Business hours seen from UTC: a Berlin queue across the clock changes and midnight, a
//! holiday, split and closed days, a long weekend, business seconds over closing time and
//! over years, and the specs that are refused.

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn hours(toml_text: &str) -> BusinessHours {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}\n{e}"))
}

fn refused(toml_text: &str) -> String {
    match toml::from_str::<BusinessHours>(toml_text) {
        Ok(h) => panic!("accepted: {h:?}"),
        Err(e) => e.to_string(),
    }
}

/// Berlin, weekdays 09:00-17:00.
fn berlin_office() -> BusinessHours {
    hours(
        r#"timezone = "Europe/Berlin"
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"
"#,
    )
}

#[test]
fn a_berlin_queue_opens_an_hour_earlier_in_utc_after_the_clocks_go_forward() {
    let h = berlin_office();
    // Friday 27 March 2026, winter time (UTC+1): 09:00 local is 08:00 UTC.
    assert!(!h.is_open(utc("2026-03-27T07:59:59Z")));
    assert!(h.is_open(utc("2026-03-27T08:00:00Z")));
    assert!(h.is_open(utc("2026-03-27T15:59:59Z")));
    assert!(!h.is_open(utc("2026-03-27T16:00:00Z")));
    // The clocks go forward on Sunday 29 March: Monday is summer time (UTC+2).
    assert!(!h.is_open(utc("2026-03-30T06:59:59Z")));
    assert!(h.is_open(utc("2026-03-30T07:00:00Z")));
    assert!(!h.is_open(utc("2026-03-30T15:00:00Z")));
    // From Friday's closing the next opening is Monday 09:00 Berlin, 07:00 UTC.
    assert_eq!(
        h.next_open(utc("2026-03-27T16:00:00Z")),
        Some(utc("2026-03-30T07:00:00Z"))
    );
    assert_eq!(
        h.describe(utc("2026-03-30T07:00:00Z"), utc("2026-03-27T16:00:00Z")),
        "Monday at 09:00"
    );
    // Open from Friday 16:30 UTC to Monday 07:30 UTC: only Monday's first half hour.
    assert_eq!(
        h.business_secs_between(utc("2026-03-27T16:30:00Z"), utc("2026-03-30T07:30:00Z")),
        1800
    );
}

#[test]
fn the_days_the_clocks_change_have_23_and_25_hours() {
    let h = hours("timezone = \"Europe/Berlin\"\nsun = \"00:00-24:00\"\n");
    let spring = h.business_secs_between(utc("2026-03-28T00:00:00Z"), utc("2026-03-30T00:00:00Z"));
    assert_eq!(spring, 23 * 3600);
    let autumn = h.business_secs_between(utc("2026-10-24T00:00:00Z"), utc("2026-10-26T00:00:00Z"));
    assert_eq!(autumn, 25 * 3600);
    // Sunday 25 October from 00:30 UTC (02:30 summer time) on: open.
    assert!(h.is_open(utc("2026-10-25T00:30:00Z")));
    // Saturday 23:30 Berlin, 22:30 UTC: closed, opens at Sunday 00:00 Berlin.
    assert_eq!(
        h.next_open(utc("2026-10-24T21:30:00Z")),
        Some(utc("2026-10-24T22:00:00Z"))
    );
}

#[test]
fn a_range_starting_at_a_time_the_clock_skips_opens_when_the_clock_jumps() {
    // 02:30 does not exist in Berlin on 29 March 2026: 02:00 winter time is 03:00 summer time.
    let h = hours("timezone = \"Europe/Berlin\"\nsun = \"02:30-04:00\"\n");
    assert_eq!(
        h.next_open(utc("2026-03-28T23:00:00Z")),
        Some(utc("2026-03-29T01:00:00Z"))
    );
    assert!(!h.is_open(utc("2026-03-29T00:59:59Z")));
    assert!(h.is_open(utc("2026-03-29T01:00:00Z")));
    assert!(!h.is_open(utc("2026-03-29T02:00:00Z")));
    assert_eq!(
        h.business_secs_between(utc("2026-03-28T00:00:00Z"), utc("2026-03-30T00:00:00Z")),
        3600
    );
}

#[test]
fn local_midnight_is_not_utc_midnight() {
    // Monday 00:00-02:00 in Berlin is Sunday 23:00 to Monday 01:00 UTC in winter.
    let h = hours("timezone = \"Europe/Berlin\"\nmon = \"00:00-02:00\"\n");
    assert!(
        h.is_open(utc("2026-01-04T23:30:00Z")),
        "Sunday in UTC, Monday in Berlin"
    );
    assert!(!h.is_open(utc("2026-01-05T01:00:00Z")));
    assert_eq!(
        h.next_open(utc("2026-01-04T12:00:00Z")),
        Some(utc("2026-01-04T23:00:00Z"))
    );
    // New York, Friday 20:00-23:00 local: Saturday 01:00-04:00 UTC in winter.
    let ny = hours("timezone = \"America/New_York\"\nfri = \"20:00-23:00\"\n");
    assert!(
        ny.is_open(utc("2026-01-10T02:00:00Z")),
        "Saturday in UTC, Friday in New York"
    );
    assert!(
        !ny.is_open(utc("2026-01-09T02:00:00Z")),
        "Friday in UTC, Thursday in New York"
    );
    assert_eq!(
        ny.business_secs_between(utc("2026-01-09T00:00:00Z"), utc("2026-01-11T00:00:00Z")),
        3 * 3600
    );
}

#[test]
fn a_holiday_is_closed_all_day_in_the_queues_zone() {
    let mut spec: HoursSpec = toml::from_str(
        "timezone = \"Europe/Berlin\"\nthu = \"09:00-17:00\"\nfri = \"09:00-17:00\"\n",
    )
    .unwrap();
    spec.holidays = vec!["2026-12-25".into()];
    let h = BusinessHours::from_spec(&spec).unwrap();
    assert!(
        h.is_open(utc("2026-12-24T09:00:00Z")),
        "Thursday 10:00 Berlin"
    );
    assert!(
        !h.is_open(utc("2026-12-25T09:00:00Z")),
        "Christmas Day 10:00 Berlin"
    );
    assert_eq!(
        h.business_secs_between(utc("2026-12-24T00:00:00Z"), utc("2026-12-26T00:00:00Z")),
        8 * 3600
    );
}

#[test]
fn split_days_close_for_lunch() {
    let h = hours("timezone = \"Europe/Berlin\"\nmon = \"09:00-12:00, 13:00-18:00\"\n");
    // Monday 5 January 2026, UTC+1.
    assert!(h.is_open(utc("2026-01-05T10:59:00Z")));
    assert!(!h.is_open(utc("2026-01-05T11:30:00Z")));
    assert_eq!(
        h.next_open(utc("2026-01-05T11:30:00Z")),
        Some(utc("2026-01-05T12:00:00Z"))
    );
    // 11:00 to 14:00 Berlin: one hour before lunch and one after.
    assert_eq!(
        h.business_secs_between(utc("2026-01-05T10:00:00Z"), utc("2026-01-05T13:00:00Z")),
        2 * 3600
    );
    // Written back the way it was read (the rules file shows what is in force).
    let spec = HoursSpec::from(h.clone());
    assert_eq!(spec.mon.as_deref(), Some("09:00-12:00,13:00-18:00"));
    assert_eq!(BusinessHours::from_spec(&spec).unwrap(), h);
}

#[test]
fn closed_and_absent_days_are_closed() {
    let h = hours(
        "timezone = \"Europe/Berlin\"\nfri = \"09:00-17:00\"\nsat = \"closed\"\nmon = \"09:00-17:00\"\n",
    );
    // Saturday 10 January 2026 noon: closed; Sunday is absent; Monday 09:00 Berlin.
    assert!(!h.is_open(utc("2026-01-10T11:00:00Z")));
    assert_eq!(
        h.next_open(utc("2026-01-10T11:00:00Z")),
        Some(utc("2026-01-12T08:00:00Z"))
    );
}

#[test]
fn the_next_opening_skips_a_long_weekend_and_its_holidays() {
    let mut spec = HoursSpec::from(berlin_office());
    spec.holidays = vec!["2026-12-25".into(), "2026-12-28".into()];
    let h = BusinessHours::from_spec(&spec).unwrap();
    // Thursday 24 December, 18:00 Berlin: Friday and Monday are holidays, the weekend closed.
    let at = utc("2026-12-24T17:00:00Z");
    let opens = h.next_open(at);
    assert_eq!(opens, Some(utc("2026-12-29T08:00:00Z")));
    assert_eq!(h.describe(opens.unwrap(), at), "Tuesday at 09:00");
    // A week or more ahead the date is said too.
    assert_eq!(
        h.describe(utc("2027-01-05T08:00:00Z"), at),
        "Tuesday 5 January at 09:00"
    );
    // Open now: the answer is now.
    let open = utc("2026-12-29T10:00:00Z");
    assert_eq!(h.next_open(open), Some(open));
}

#[test]
fn business_seconds_stop_at_closing_time_and_start_again_at_opening() {
    let h = berlin_office();
    // Monday 16:00 Berlin to Tuesday 10:00 Berlin (5-6 January 2026, UTC+1): 1 h + 1 h.
    let from = utc("2026-01-05T15:00:00Z");
    let to = utc("2026-01-06T09:00:00Z");
    assert_eq!(h.business_secs_between(from, to), 2 * 3600);
    assert_eq!(h.business_secs_between(to, from), 0);
    assert_eq!(h.business_secs_between(from, from), 0);
    // Friday 16:59:30 to Monday 09:00:30 Berlin: a minute.
    assert_eq!(
        h.business_secs_between(utc("2026-01-09T15:59:30Z"), utc("2026-01-12T08:00:30Z")),
        60
    );
}

#[test]
fn years_are_counted_a_day_at_a_time_and_absurd_spans_are_capped() {
    let h = hours(
        "timezone = \"UTC\"\nmon = \"09:00-17:00\"\ntue = \"09:00-17:00\"\nwed = \"09:00-17:00\"\n\
         thu = \"09:00-17:00\"\nfri = \"09:00-17:00\"\n",
    );
    let from = utc("2024-01-01T00:00:00Z"); // a Monday
    let started = std::time::Instant::now();
    let weeks = 520; // ten years, less than the cap
    let secs = h.business_secs_between(from, from + Duration::weeks(weeks));
    let took = started.elapsed();
    assert_eq!(secs, weeks * 5 * 8 * 3600);
    assert!(
        took < std::time::Duration::from_secs(2),
        "ten years took {took:?}"
    );
    // A thousand years counts as the cap.
    let cap = h.business_secs_between(from, from + Duration::days(MAX_SPAN_DAYS));
    assert_eq!(
        h.business_secs_between(from, from + Duration::days(365_000)),
        cap
    );
    // The far ends of time do not panic.
    assert!(!h.is_open(DateTime::<Utc>::MAX_UTC));
    assert_eq!(h.next_open(DateTime::<Utc>::MIN_UTC), None);
    assert_eq!(
        h.business_secs_between(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC),
        0
    );
}

#[test]
fn hours_that_never_open_say_so() {
    let h = hours("timezone = \"Europe/Berlin\"\nmon = \"closed\"\n");
    let now = utc("2026-01-05T10:00:00Z");
    assert!(!h.is_open(now));
    assert_eq!(h.next_open(now), None);
    assert_eq!(h.business_secs_between(now, now + Duration::days(30)), 0);
    // Every Monday a holiday for the next years: still found after them, or never.
    let mut spec = HoursSpec::from(hours("timezone = \"UTC\"\nmon = \"09:00-10:00\"\n"));
    spec.holidays = (0..100)
        .map(|w| (NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + Duration::weeks(w)).to_string())
        .collect();
    let h = BusinessHours::from_spec(&spec).unwrap();
    assert_eq!(h.next_open(now), Some(utc("2027-12-06T09:00:00Z")));
}

#[test]
fn a_bad_spec_is_refused_naming_its_field_and_what_to_write() {
    let e = refused("timezone = \"Europe/Berlinn\"\nmon = \"09:00-17:00\"\n");
    assert!(e.contains("`timezone`") && e.contains("IANA"), "{e}");
    let e = refused("timezone = \"UTC\"\nmon = \"9-17\"\n");
    assert!(e.contains("`mon`") && e.contains("HH:MM-HH:MM"), "{e}");
    let e = refused("timezone = \"UTC\"\nfri = \"22:00-02:00\"\n");
    assert!(e.contains("`fri`") && e.contains("over midnight"), "{e}");
    let e = refused("timezone = \"UTC\"\ntue = \"09:00-13:00,12:00-18:00\"\n");
    assert!(e.contains("`tue`") && e.contains("overlap"), "{e}");
    let e = refused("timezone = \"UTC\"\nwed = \"09:00-24:30\"\n");
    assert!(e.contains("`wed`"), "{e}");
    let e = refused("timezone = \"UTC\"\nthu = \"\"\n");
    assert!(e.contains("`thu`") && e.contains("closed"), "{e}");
    let e = refused("timezone = \"UTC\"\nholidays = [\"2026-02-30\"]\n");
    assert!(e.contains("`holidays`") && e.contains("YYYY-MM-DD"), "{e}");
    let e = refused("timezone = \"UTC\"\nmonday = \"09:00-17:00\"\n");
    assert!(e.contains("monday"), "{e}");
    let many: Vec<String> = (0..=MAX_HOLIDAYS)
        .map(|_| "\"2026-01-01\"".into())
        .collect();
    let e = refused(&format!(
        "timezone = \"UTC\"\nholidays = [{}]\n",
        many.join(",")
    ));
    assert!(e.contains("`holidays`") && e.contains("at most"), "{e}");
}
