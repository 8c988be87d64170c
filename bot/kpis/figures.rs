//! The KPIs of a set of conversations, each with its formula and the number of cases it
//! counts. Shares are fractions (0..1); times are seconds; NPS is -100..100. A conversation
//! whose outcome is not known yet (its recontact window still open, an escalation younger
//! than the 2-minute target and not answered) is left out of that figure's `n`, never
//! counted as a success or a failure.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::facts::Facts;

/// One figure: its value (`None` when no case counts), how many cases it counts and how it
/// is computed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub value: Option<f64>,
    pub n: usize,
    pub formula: String,
}

/// What the figures depend on besides the conversations.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A customer who starts another conversation (or reopens this one) within this many
    /// hours after its last message was not helped: not contained, not FCR.
    pub recontact_hours: i64,
    /// The "answered by a person within" target, in business seconds (120).
    pub answer_target_secs: i64,
    /// Each queue's SLA in business seconds.
    pub sla_secs: BTreeMap<String, u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            recontact_hours: 24,
            answer_target_secs: 120,
            sla_secs: BTreeMap::new(),
        }
    }
}

/// Every KPI of `selected` (a subset of `all`, which is read for recontacts), as of `now`;
/// `agent` narrows handle time to that agent's own spans.
pub fn figures(
    all: &[Facts],
    selected: &[&Facts],
    settings: &Settings,
    agent: Option<&str>,
    now: DateTime<Utc>,
) -> BTreeMap<&'static str, Figure> {
    let window = Duration::hours(settings.recontact_hours);
    let hours = settings.recontact_hours;
    let settled: Vec<(&Facts, bool)> = selected
        .iter()
        .filter(|f| f.last_activity + window <= now)
        .map(|f| (*f, f.recontacted(all, window)))
        .collect();
    let mut out = BTreeMap::new();
    out.insert(
        "conversations",
        Figure {
            value: Some(selected.len() as f64),
            n: selected.len(),
            formula: "conversations started in the period (and matching the filter)".into(),
        },
    );
    let contained = settled
        .iter()
        .filter(|(f, back)| !f.escalated && !f.person && !back && !negative_csat(f))
        .count();
    out.insert(
        "containment",
        share(
            contained,
            settled.len(),
            format!(
                "conversations resolved without a person / conversations whose {hours} h \
                 recontact window is over; resolved without a person = never escalated, no \
                 person wrote or took it, the customer did not start another conversation or \
                 reopen it within {hours} h of its last message, and no CSAT of 1-2"
            ),
        ),
    );
    let escalated = selected.iter().filter(|f| f.escalated).count();
    out.insert(
        "escalation_rate",
        share(
            escalated,
            selected.len(),
            "conversations that entered a human queue / conversations".into(),
        ),
    );
    let bot_frt: Vec<f64> = selected
        .iter()
        .filter_map(|f| f.bot_first_response_secs)
        .collect();
    out.insert(
        "first_response_bot_secs",
        median_of(
            bot_frt,
            "median seconds from the customer's first message to the bot's first answer".into(),
        ),
    );
    let answers: Vec<_> = selected
        .iter()
        .filter_map(|f| f.person_answer.as_ref())
        .collect();
    out.insert(
        "first_response_person_secs",
        median_of(
            answers
                .iter()
                .filter_map(|a| a.wall_secs)
                .map(|s| s as f64)
                .collect(),
            "median wall-clock seconds from a conversation's first escalation to the first \
             message a person wrote (the bot's 'an agent joined' line is not a response); \
             escalations nobody answered are not in n"
                .into(),
        ),
    );
    out.insert(
        "first_response_person_business_secs",
        median_of(
            answers
                .iter()
                .filter_map(|a| a.business_secs)
                .map(|s| s as f64)
                .collect(),
            "the same in business seconds of the queue's opening hours".into(),
        ),
    );
    let target = settings.answer_target_secs;
    out.insert(
        "answered_within_2min",
        within(
            &answers,
            |_| target,
            format!(
                "escalations a person answered within {target} business seconds / escalations \
                 whose outcome is known (answered, or waiting longer than {target} business \
                 seconds); first escalation per conversation"
            ),
        ),
    );
    out.insert(
        "answered_within_sla",
        within(
            &answers,
            |queue| {
                settings
                    .sla_secs
                    .get(queue)
                    .map_or(target, |s| (*s).min(i64::MAX as u64) as i64)
            },
            "escalations a person answered within their queue's SLA (business seconds) / \
             escalations whose outcome is known"
                .into(),
        ),
    );
    out.insert(
        "waiting_secs",
        median_of(
            answers
                .iter()
                .filter_map(|a| a.wait_secs)
                .map(|s| s as f64)
                .collect(),
            "median wall-clock seconds from the first escalation to the first time an agent \
             took the conversation"
                .into(),
        ),
    );
    let spans: Vec<f64> = selected
        .iter()
        .flat_map(|f| f.spans.iter())
        .filter(|s| agent.is_none_or(|a| a == s.agent))
        .map(|s| s.secs as f64)
        .collect();
    out.insert(
        "handle_secs",
        mean_of(
            spans,
            "mean seconds of an agent's handling spans (took it -> closed, handed back or \
             lost it); a reopened conversation's next handling is its own span, so a reopen \
             never stretches a span"
                .into(),
        ),
    );
    let fcr = settled
        .iter()
        .filter(|(f, back)| {
            !back && !negative_csat(f) && ((!f.escalated && !f.person) || f.closed_by_agent)
        })
        .count();
    out.insert(
        "fcr",
        share(
            fcr,
            settled.len(),
            format!(
                "conversations resolved in that one contact / conversations whose {hours} h \
                 window is over; resolved = contained by the bot or closed by an agent, with \
                 no recontact or reopen within {hours} h and no CSAT of 1-2"
            ),
        ),
    );
    let csat: Vec<u8> = selected.iter().filter_map(|f| f.csat).collect();
    out.insert(
        "csat",
        share(
            csat.iter().filter(|s| **s >= 4).count(),
            csat.len(),
            "ratings of 4 or 5 / ratings (1-5 after the conversation closed)".into(),
        ),
    );
    out.insert(
        "csat_mean",
        mean_of(
            csat.iter().map(|s| *s as f64).collect(),
            "sum of the ratings / ratings (1-5, after the conversation closed)".into(),
        ),
    );
    let nps: Vec<u8> = selected.iter().filter_map(|f| f.nps).collect();
    let promoters = nps.iter().filter(|s| **s >= 9).count() as f64;
    let detractors = nps.iter().filter(|s| **s <= 6).count() as f64;
    out.insert(
        "nps",
        Figure {
            value: (!nps.is_empty()).then(|| 100.0 * (promoters - detractors) / nps.len() as f64),
            n: nps.len(),
            formula: "100 x (answers 9-10 - answers 0-6) / answers (0-10)".into(),
        },
    );
    out.insert(
        "sentiment_start",
        mean_of(
            selected
                .iter()
                .filter_map(|f| f.sentiment_start)
                .map(f64::from)
                .collect(),
            "mean negative-sentiment probability of the customer's first message".into(),
        ),
    );
    out.insert(
        "sentiment_end",
        mean_of(
            selected
                .iter()
                .filter_map(|f| f.sentiment_end)
                .map(f64::from)
                .collect(),
            "mean negative-sentiment probability of the customer's last message".into(),
        ),
    );
    out
}

/// The escalation rate of each rule that sent any selected conversation to a queue.
pub fn escalation_by_rule(selected: &[&Facts]) -> BTreeMap<String, Figure> {
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    for f in selected {
        for r in &f.rules {
            *rules.entry(r.clone()).or_default() += 1;
        }
    }
    rules
        .into_iter()
        .map(|(rule, k)| {
            let formula = format!("conversations rule {rule:?} sent to a queue / conversations");
            (rule, share(k, selected.len(), formula))
        })
        .collect()
}

fn negative_csat(f: &Facts) -> bool {
    f.csat.is_some_and(|s| s <= 2)
}

fn within(
    answers: &[&super::facts::PersonAnswer],
    limit: impl Fn(&str) -> i64,
    formula: String,
) -> Figure {
    let mut known = 0;
    let mut met = 0;
    for a in answers {
        let limit = limit(&a.queue);
        match a.business_secs {
            Some(s) => {
                known += 1;
                if s <= limit {
                    met += 1;
                }
            }
            None if a.business_so_far > limit => known += 1,
            None => {}
        }
    }
    share(met, known, formula)
}

fn share(k: usize, n: usize, formula: String) -> Figure {
    Figure {
        value: (n > 0).then(|| k as f64 / n as f64),
        n,
        formula,
    }
}

fn mean_of(values: Vec<f64>, formula: String) -> Figure {
    Figure {
        value: (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
        n: values.len(),
        formula,
    }
}

fn median_of(mut values: Vec<f64>, formula: String) -> Figure {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let value = match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    };
    Figure { value, n, formula }
}
