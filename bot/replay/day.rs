//! A simulated day at the desk: recorded conversations (the labelled sets in `data/`)
//! arrive over 24 hours with a daytime peak, each through the real desk (NLU, rules, bot
//! answers, queues); simulated agents on shifts take queued conversations after a pickup
//! delay, answer after typing, close after a while; some customers answer the satisfaction
//! question. Every desk call runs at once; the simulation notes when (in simulated time) it
//! happened, and afterwards every time the store wrote during a call is moved to that
//! call's simulated time, so the store reads as the day would have. The KPIs are then
//! computed from that store by the same code as `/api/v1/kpis`.
//!
//! What is simulated and how: arrivals per hour follow [`HOURLY_WEIGHT`]; a customer's next
//! message comes 25-120 s after the last; agents pick up 10-60 s after a conversation is
//! first seen waiting while they have room and are on shift, write their first answer 20-75 s
//! later and close 3-12 min after that; 40% of customers answer the rating, 1-5, lower for
//! customers who sounded negative at the end or waited over 25 minutes, and 70% of those
//! answer the NPS question after it (0-10, in line with their rating). Everything else is
//! the product's own behaviour.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Recorded;
use crate::desk::Desk;
use crate::message::ConversationId;
use crate::store::{Record, Store, StoreError};

/// Relative arrivals per hour of the day (00:00 first): a web shop's support day.
pub const HOURLY_WEIGHT: [f64; 24] = [
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 4.0, 6.0, 7.0, 7.0, 6.0, 6.0, 6.0, 6.0, 6.0, 5.0, 5.0,
    5.0, 4.0, 3.0, 2.0, 1.5,
];

/// One simulated agent: who, how many conversations at once, the shift (hours, UTC).
#[derive(Debug, Clone)]
pub struct SimAgent {
    pub name: String,
    pub capacity: usize,
    pub from_hour: u32,
    pub to_hour: u32,
}

/// The default team: two on the early shift, one in the middle, two late (07:00-22:00).
pub fn default_team() -> Vec<SimAgent> {
    let agent = |name: &str, capacity, from_hour, to_hour| SimAgent {
        name: name.into(),
        capacity,
        from_hour,
        to_hour,
    };
    vec![
        agent("ana", 3, 7, 15),
        agent("ben", 3, 7, 15),
        agent("cy", 3, 11, 19),
        agent("dee", 3, 14, 22),
        agent("eli", 2, 14, 22),
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum DayError {
    #[error("the desk refused a simulated step: {0}")]
    Desk(#[from] crate::desk::DeskError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the simulated store could not be rewritten: {0}")]
    Rewrite(String),
}

/// What the simulation did, besides the store it leaves.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DayCounts {
    pub conversations: usize,
    pub customer_messages: usize,
    pub claims: usize,
    pub agent_replies: usize,
    pub closes: usize,
    pub ratings_sent: usize,
    pub recommendations_sent: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Customer { conv: usize, message: usize },
    Rate { conv: usize, score: u8 },
    Recommend { conv: usize, score: u8 },
    Look,
    Claim { agent: usize, id: String },
    Reply { agent: usize, id: String },
    Close { agent: usize, id: String },
}

/// When each desk call ran (real time) and when it happened in the simulated day.
#[derive(Default)]
struct Stamps(Vec<(DateTime<Utc>, DateTime<Utc>)>);

impl Stamps {
    /// The simulated time of a time the store wrote: the call that was running then (the
    /// last one started before it), shifted by how far into the call it came.
    fn map(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let i = self.0.partition_point(|(real, _)| *real <= t);
        match i.checked_sub(1) {
            Some(i) => self.0[i].1 + (t - self.0[i].0),
            None => t,
        }
    }
}

/// Runs `conversations` (recorded messages grouped by conversation, in file order) through
/// `desk` over the day starting at `day` (midnight UTC) with `team`; returns the counts. The
/// desk's store then holds the day as recorded in real time: [`rewrite`] moves it to
/// simulated time.
pub async fn simulate(
    desk: &Desk,
    conversations: &[Vec<Recorded>],
    team: &[SimAgent],
    day: DateTime<Utc>,
    seed: u64,
    progress: &(dyn Fn() + Sync),
) -> Result<(DayCounts, Vec<(DateTime<Utc>, DateTime<Utc>)>), DayError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stamps = Stamps::default();
    let mut counts = DayCounts {
        conversations: conversations.len(),
        ..Default::default()
    };
    let mut steps: BinaryHeap<Reverse<(DateTime<Utc>, u64, Step)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |steps: &mut BinaryHeap<_>, at: DateTime<Utc>, step: Step| {
        seq += 1;
        steps.push(Reverse((at, seq, step)));
    };
    let total: f64 = HOURLY_WEIGHT.iter().sum();
    for conv in 0..conversations.len() {
        let mut pick = rng.gen_range(0.0..total);
        let hour = HOURLY_WEIGHT
            .iter()
            .position(|w| {
                pick -= w;
                pick < 0.0
            })
            .unwrap_or(23);
        let at = day + Duration::hours(hour as i64) + Duration::seconds(rng.gen_range(0..3600));
        push(&mut steps, at, Step::Customer { conv, message: 0 });
    }
    let end = day + Duration::days(1);
    let mut look = day;
    while look < end + Duration::hours(6) {
        push(&mut steps, look, Step::Look);
        look += Duration::seconds(15);
    }
    let mut conv_of: HashMap<String, usize> = HashMap::new();
    let mut busy: Vec<HashSet<String>> = vec![HashSet::new(); team.len()];
    let mut picked: HashSet<String> = HashSet::new();
    let mut queued_at: HashMap<String, DateTime<Utc>> = HashMap::new();
    while let Some(Reverse((at, _, step))) = steps.pop() {
        let real = Utc::now();
        stamps.0.push((real, at));
        match step {
            Step::Customer { conv, message } => {
                let m = &conversations[conv][message];
                let turn = desk.receive(m.inbound(&m.text)).await?;
                counts.customer_messages += 1;
                progress();
                conv_of.insert(turn.conversation_id.0.clone(), conv);
                if message + 1 < conversations[conv].len() {
                    let next = at + Duration::seconds(rng.gen_range(25..=120));
                    push(
                        &mut steps,
                        next,
                        Step::Customer {
                            conv,
                            message: message + 1,
                        },
                    );
                }
            }
            Step::Rate { conv, score } => {
                let m = &conversations[conv][0];
                desk.receive(m.inbound(&score.to_string())).await?;
                counts.ratings_sent += 1;
                if rng.gen_bool(0.7) {
                    let score = recommend(&mut rng, score);
                    let when = at + Duration::seconds(rng.gen_range(15..=120));
                    push(&mut steps, when, Step::Recommend { conv, score });
                }
            }
            Step::Recommend { conv, score } => {
                let m = &conversations[conv][0];
                desk.receive(m.inbound(&score.to_string())).await?;
                counts.recommendations_sent += 1;
            }
            Step::Look => {
                let hour = (at - day).num_hours().rem_euclid(24) as u32;
                let waiting: Vec<String> = desk
                    .queues()
                    .await?
                    .into_iter()
                    .flat_map(|q| q.entries)
                    .map(|e| e.conversation_id.0)
                    .collect();
                for id in &waiting {
                    queued_at.entry(id.clone()).or_insert(at);
                }
                let fresh: Vec<String> = waiting
                    .into_iter()
                    .filter(|id| !picked.contains(id))
                    .collect();
                for id in fresh {
                    // The agent on shift with the most room takes it.
                    let free = (0..team.len())
                        .filter(|a| on_shift(&team[*a], hour) && busy[*a].len() < team[*a].capacity)
                        .max_by_key(|a| (team[*a].capacity - busy[*a].len(), Reverse(*a)));
                    let Some(agent) = free else { break };
                    busy[agent].insert(id.clone());
                    picked.insert(id.clone());
                    let when = at + Duration::seconds(rng.gen_range(10..=60));
                    push(&mut steps, when, Step::Claim { agent, id });
                }
            }
            Step::Claim { agent, id } => {
                let cid = ConversationId(id.clone());
                match desk.claim(&team[agent].name, &cid).await {
                    Ok(_) => {
                        counts.claims += 1;
                        let when = at + Duration::seconds(rng.gen_range(20..=75));
                        push(&mut steps, when, Step::Reply { agent, id });
                    }
                    // Gone from the queue meanwhile (closed, taken): the agent moves on.
                    Err(_) => {
                        busy[agent].remove(&id);
                    }
                }
            }
            Step::Reply { agent, id } => {
                let cid = ConversationId(id.clone());
                let text = "Thanks for waiting, I have your conversation in front of me and \
                            I'm sorting this out for you now.";
                if desk
                    .agent_reply(&team[agent].name, &cid, text)
                    .await
                    .is_ok()
                {
                    counts.agent_replies += 1;
                }
                let when = at + Duration::seconds(rng.gen_range(180..=720));
                push(&mut steps, when, Step::Close { agent, id });
            }
            Step::Close { agent, id } => {
                let cid = ConversationId(id.clone());
                busy[agent].remove(&id);
                if desk.close(&team[agent].name, &cid).await.is_ok() {
                    counts.closes += 1;
                    if let Some(conv) = conv_of.get(&id).copied() {
                        if rng.gen_bool(0.4) {
                            let waited = queued_at
                                .get(&id)
                                .is_some_and(|q| at - *q > Duration::minutes(25));
                            let negative = desk
                                .conversation(&cid)
                                .await?
                                .and_then(|c| c.sentiment_trajectory.last().copied())
                                .unwrap_or(0.0);
                            let score = rating(&mut rng, negative, waited);
                            let when = at + Duration::seconds(rng.gen_range(30..=300));
                            push(&mut steps, when, Step::Rate { conv, score });
                        }
                    }
                }
            }
        }
    }
    desk.flush().await?;
    Ok((counts, stamps.0))
}

fn on_shift(agent: &SimAgent, hour: u32) -> bool {
    (agent.from_hour..agent.to_hour).contains(&hour)
}

/// A customer's rating: 4-5 mostly; lower when they sounded negative at the end or waited.
fn rating(rng: &mut StdRng, negative: f32, waited: bool) -> u8 {
    let mut score = 4.6 - 2.0 * negative as f64 - if waited { 1.2 } else { 0.0 };
    score += rng.gen_range(-1.0..1.0);
    score.round().clamp(1.0, 5.0) as u8
}

/// How likely a customer who rated `rating` is to recommend us, 0-10: promoters (9-10)
/// among the 5s, passives and detractors below.
fn recommend(rng: &mut StdRng, rating: u8) -> u8 {
    match rating {
        5 => rng.gen_range(8..=10),
        4 => rng.gen_range(6..=9),
        3 => rng.gen_range(4..=7),
        _ => rng.gen_range(0..=5),
    }
}

/// Copies `from` into the empty `to` with every time in the conversations, messages and
/// queues moved from when the simulation's calls ran to when they happened in the day.
pub async fn rewrite(
    from: &dyn Store,
    to: &dyn Store,
    stamps: Vec<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<usize, DayError> {
    let stamps = Stamps(stamps);
    let mut records: Vec<Record> = from.records().await?;
    for r in &mut records {
        if r.value.is_empty() {
            continue;
        }
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&r.value) else {
            continue;
        };
        shift(&mut v, &stamps);
        r.value = serde_json::to_string(&v).map_err(|e| DayError::Rewrite(e.to_string()))?;
    }
    to.load(&records).await?;
    to.flush().await?;
    Ok(records.len())
}

/// Every RFC 3339 time in `v` moved to simulated time.
fn shift(v: &mut serde_json::Value, stamps: &Stamps) {
    match v {
        serde_json::Value::String(s) => {
            if s.len() >= 20 && s.as_bytes().get(4) == Some(&b'-') {
                if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                    *s = stamps
                        .map(t.with_timezone(&Utc))
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| shift(i, stamps)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| shift(i, stamps)),
        _ => {}
    }
}

/// Recorded messages grouped by conversation, first appearance first.
pub fn group(records: Vec<Recorded>) -> Vec<Vec<Recorded>> {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Vec<Recorded>> = BTreeMap::new();
    for r in records {
        if !by.contains_key(&r.conversation) {
            order.push(r.conversation.clone());
        }
        by.entry(r.conversation.clone()).or_default().push(r);
    }
    order.into_iter().filter_map(|c| by.remove(&c)).collect()
}

/// Midnight UTC of the day `at` falls in.
pub fn midnight(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.from_utc_datetime(&at.date_naive().and_time(NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_time_written_during_a_call_moves_to_that_calls_simulated_time() {
        let stamps = Stamps(vec![
            (t("2026-12-07T10:00:00.000Z"), t("2026-12-01T09:00:00Z")),
            (t("2026-12-07T10:00:00.050Z"), t("2026-12-01T09:03:00Z")),
        ]);
        assert_eq!(
            stamps.map(t("2026-12-07T10:00:00.010Z")),
            t("2026-12-01T09:00:00.010Z")
        );
        assert_eq!(
            stamps.map(t("2026-12-07T10:00:00.070Z")),
            t("2026-12-01T09:03:00.020Z")
        );
        // Before the first call: left as it is.
        assert_eq!(
            stamps.map(t("2026-12-07T09:00:00Z")),
            t("2026-12-07T09:00:00Z")
        );
    }

    #[test]
    fn every_time_in_a_record_is_moved_and_nothing_else() {
        let stamps = Stamps(vec![(t("2026-12-07T10:00:00Z"), t("2026-12-01T08:00:00Z"))]);
        let mut v = serde_json::json!({
            "created": "2026-12-07T10:00:01Z",
            "timeline": [{"at": "2026-12-07T10:00:02.5Z", "kind": "reopened"}],
            "text": "2026-12-07 is not a time",
            "n": 3
        });
        shift(&mut v, &stamps);
        assert_eq!(t(v["created"].as_str().unwrap()), t("2026-12-01T08:00:01Z"));
        assert_eq!(
            t(v["timeline"][0]["at"].as_str().unwrap()),
            t("2026-12-01T08:00:02.5Z")
        );
        assert_eq!(v["text"], "2026-12-07 is not a time");
        assert_eq!(v["n"], 3);
    }

    #[test]
    fn ratings_are_lower_for_negative_or_waiting_customers() {
        let mut rng = StdRng::seed_from_u64(1);
        let mean = |rng: &mut StdRng, negative, waited| {
            (0..400)
                .map(|_| rating(rng, negative, waited) as f64)
                .sum::<f64>()
                / 400.0
        };
        let calm = mean(&mut rng, 0.0, false);
        let upset = mean(&mut rng, 0.9, true);
        assert!(calm > 4.0 && upset < 2.5, "calm {calm}, upset {upset}");
    }
}
