//! Business hours (issue 23) on a real desk and store with the keyword NLU: a customer who
//! asks for a person while the queue is closed is told when the team is back (the queue's
//! own day, time and zone), is queued, has what they write next kept for the team, still
//! gets the bot's answers to routine questions, and at opening comes before a higher-priority
//! customer who arrived later; the console's view says the queue is closed, when it opens,
//! and that the entry was left out of hours, with no SLA time counted while closed. A bad
//! hours spec is refused by the live reload with its key and line, and the rules in force
//! stay.
//!
//! "Closed now" never depends on the hour the test runs: the queue opens every day but lists
//! yesterday, today and tomorrow (in its zone) as holidays, so it opens the day after
//! tomorrow at 09:00 whatever the time, even across midnight while the test runs.

use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Europe::Berlin;

use crate::support::desk::*;
use frontdesk::cockpit::{RulesSource, Source};
use frontdesk::message::{Speaker, Status};
use frontdesk::policy::Rules;

const WEEK: &str = r#"mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"
sat = "09:00-17:00"
sun = "09:00-17:00"
"#;

const RULES: &str = r#"
[[rules]]
name = "asks for a person"
when = "human_request"
queue = "general"
priority = 10

[[rules]]
name = "angry"
when = "anger"
at_least = 0.9
queue = "general"
priority = 50
"#;

/// The rules with the `general` queue's hours: `hours` is the text of its hours table
/// (none: always open).
fn rules_text(hours: Option<&str>) -> String {
    let hours = hours.map_or(String::new(), |h| format!("[queues.general.hours]\n{h}\n"));
    format!("[queues.general]\nsla_secs = 300\n{hours}{RULES}")
}

fn rules(text: &str) -> Rules {
    Rules::parse(text, Path::new("test-rules.toml")).expect("valid rules")
}

/// Hours in Berlin, every day 09:00-17:00, closed yesterday, today and tomorrow (Berlin).
fn closed_for_three_days() -> String {
    let today = Utc::now().with_timezone(&Berlin).date_naive();
    let days: Vec<String> = (-1..=1)
        .map(|d| format!("\"{}\"", today + Duration::days(d)))
        .collect();
    format!(
        "timezone = \"Europe/Berlin\"\n{WEEK}holidays = [{}]\n",
        days.join(", ")
    )
}

/// When those hours open: the day after tomorrow, 09:00 in Berlin.
fn opening() -> DateTime<Utc> {
    let day = Utc::now().with_timezone(&Berlin).date_naive() + Duration::days(2);
    Berlin
        .from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
        .single()
        .expect("09:00 exists in Berlin")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_customer_who_writes_out_of_hours_is_told_when_the_team_is_back_and_served_first() {
    let dir = tempfile::tempdir().unwrap();
    let closed = rules_text(Some(&closed_for_three_days()));
    let desk = TestDesk::new().rules(rules(&closed)).open(dir.path());
    let opens = opening();
    let weekday = opens.with_timezone(&Berlin).format("%A").to_string();

    // Asking for a person at night: told when a person is back, and queued.
    let asked = say(&desk, "night-owl", "can I talk to a person please").await;
    assert_eq!(asked.status, Status::Queued, "{}", reply(&asked));
    let told = reply(&asked);
    assert!(
        told.contains(&format!("back {weekday} at 09:00 (Europe/Berlin)")),
        "{told}"
    );
    assert!(told.contains("leave a message"), "{told}");
    assert_eq!(asked.queue.as_ref().map(|q| q.position), Some(1));

    // What they write next is kept for the team.
    let note = "the parcel arrived crushed, photos follow, I need it by the 12th";
    let kept = say(&desk, "night-owl", note).await;
    assert_eq!(kept.status, Status::Queued);
    assert!(
        reply(&kept).contains("kept that for our team"),
        "{}",
        reply(&kept)
    );
    assert!(reply(&kept).contains(&weekday), "{}", reply(&kept));
    // A routine question is still the bot's: answered, and the conversation stays queued.
    let routine = say(&desk, "night-owl", "how long does delivery take").await;
    assert_eq!(routine.status, Status::Queued);
    assert!(
        reply(&routine).contains("Standard delivery usually takes"),
        "{}",
        reply(&routine)
    );
    let conversation = desk
        .conversation(&asked.conversation_id)
        .await
        .unwrap()
        .expect("the conversation is stored");
    assert!(
        conversation
            .messages
            .iter()
            .any(|m| m.from == Speaker::Customer && m.text == note),
        "the message left for the team is in the transcript"
    );

    // The console: closed, when it opens, the entry marked, no SLA time while closed.
    let view = desk.queues().await.unwrap();
    let general = view.iter().find(|q| q.name == "general").unwrap();
    assert!(!general.open);
    assert_eq!(general.opens_at, Some(opens));
    assert_eq!(general.timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(general.entries.len(), 1);
    let entry = &general.entries[0];
    assert!(entry.left_out_of_hours);
    assert_eq!(entry.waiting_business_secs, 0);
    assert!(!entry.sla_breached);

    // Opening (the lead's edit makes the queue open now): an angry customer with a higher
    // priority arrives, and the message left overnight is still served first.
    desk.set_rules(rules(&rules_text(Some(&format!(
        "timezone = \"Europe/Berlin\"\n{}",
        WEEK.replace("09:00-17:00", "00:00-24:00")
    )))));
    let angry = say(&desk, "day-time", "this is ridiculous, I want a person").await;
    assert_eq!(angry.status, Status::Queued);
    assert!(reply(&angry).contains("number 2"), "{}", reply(&angry));
    assert!(!reply(&angry).contains("back "), "{}", reply(&angry));
    let view = desk.queues().await.unwrap();
    let general = view.iter().find(|q| q.name == "general").unwrap();
    assert!(general.open);
    assert_eq!(general.opens_at, None);
    let order: Vec<_> = general
        .entries
        .iter()
        .map(|e| (e.conversation_id.clone(), e.priority, e.left_out_of_hours))
        .collect();
    assert_eq!(
        order,
        vec![
            (asked.conversation_id.clone(), 10, true),
            (angry.conversation_id.clone(), 50, false)
        ],
        "the overnight message first, whatever the later one's priority"
    );
}

#[tokio::test]
async fn a_bad_hours_spec_is_refused_by_the_live_reload_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = rules_text(Some(&closed_for_three_days()));
    let desk = TestDesk::new().rules(rules(&good)).open(dir.path());
    let source = RulesSource {
        path: dir.path().join("rules.toml"),
        desk: Some(desk.clone()),
    };
    // A misspelt zone, on the 4th line of the file.
    let bad = good.replace("Europe/Berlin", "Europe/Berlim");
    let problem = source.put_in_force(&bad).await.expect_err("refused");
    assert!(
        problem.reason.contains("queues.general.hours.timezone"),
        "{}",
        problem.reason
    );
    assert_eq!(problem.line, Some(4), "{}", problem.reason);
    // A range over midnight: the day's key and its line, with what to write instead.
    let bad = good.replace("sat = \"09:00-17:00\"", "sat = \"22:00-02:00\"");
    let problem = source.check(&bad).expect_err("refused");
    assert!(
        problem.reason.contains("queues.general.hours.sat")
            && problem.reason.contains("over midnight"),
        "{}",
        problem.reason
    );
    assert_eq!(problem.line, Some(10), "{}", problem.reason);
    // The hours in force stay: the queue is still closed.
    let view = desk.queues().await.unwrap();
    let general = view.iter().find(|q| q.name == "general").unwrap();
    assert!(!general.open);
    assert_eq!(
        desk.rules().queues["general"]
            .hours
            .as_ref()
            .map(|h| h.timezone()),
        Some("Europe/Berlin")
    );
}
