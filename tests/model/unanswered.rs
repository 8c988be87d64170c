//! The unanswered inbox's grouping on the real encoder: messages about three things the
//! intents do not cover come out as three groups; and the measurement behind its threshold.

use std::collections::{BTreeMap, BTreeSet};

use frontdesk::cockpit::unanswered::{distinct, group, Failure, Unanswered, SIMILAR};

use crate::support::repo;
use crate::support::server::real_nlu;

fn messages(texts: &[&str]) -> Vec<Unanswered> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Unanswered {
            text: t.to_string(),
            time: chrono::Utc::now() - chrono::Duration::minutes(i as i64),
            kinds: BTreeSet::from([Failure::OutOfScope]),
        })
        .collect()
}

/// Groups `texts` as the inbox does; each group as its set of texts.
fn groups_of(texts: &[&str], similar: f32) -> Vec<BTreeSet<String>> {
    let nlu = real_nlu();
    let items = distinct(&messages(texts));
    let refs: Vec<&str> = items.iter().map(|d| d.text.as_str()).collect();
    let vectors = nlu.nlu().embed(&refs).expect("embed");
    group(&items, &vectors, similar)
        .into_iter()
        .map(|g| g.texts.into_iter().collect())
        .collect()
}

const GIFT_CARDS: &[&str] = &[
    "do you sell gift cards",
    "can I buy a gift card for my sister",
    "gift vouchers available?",
    "I want to give someone a gift card",
    "how do I order an e-gift card",
];
const OPENING_HOURS: &[&str] = &[
    "what time does your store open",
    "are your shops open on sunday",
    "opening hours of the paris store",
    "when do you close tonight",
    "is the shop open on bank holidays",
];
const LOYALTY_POINTS: &[&str] = &[
    "how many loyalty points do I have",
    "how do I use my reward points",
    "do loyalty points expire",
    "I didn't get points for my last purchase",
    "how does the points programme work",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_kinds_of_unanswered_questions_make_three_groups() {
    let all: Vec<&str> = [GIFT_CARDS, OPENING_HOURS, LOYALTY_POINTS].concat();
    let groups = tokio::task::spawn_blocking(move || groups_of(&all, SIMILAR))
        .await
        .unwrap();
    let expected: Vec<BTreeSet<String>> = [GIFT_CARDS, OPENING_HOURS, LOYALTY_POINTS]
        .iter()
        .map(|g| g.iter().map(|t| t.to_string()).collect())
        .collect();
    assert_eq!(groups.len(), 3, "{groups:#?}");
    for g in &expected {
        assert!(groups.contains(g), "{g:?} not one group in {groups:#?}");
    }
}

/// The fixture's topics: `## topic` then one question a line.
fn fixture() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("data/unanswered/threshold.txt")).unwrap();
    let mut topic = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix("## ") {
            topic = t.to_string();
        } else if !line.is_empty() && !line.starts_with('#') {
            out.push((line.to_string(), topic.clone()));
        }
    }
    out
}

/// Prints, per threshold, how the fixture groups: the number of groups and the pairwise
/// precision, recall and F1 of "same group" against "same topic".
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn unanswered_threshold() {
    let rows = fixture();
    let topic: BTreeMap<String, String> = rows.iter().cloned().collect();
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let nlu = real_nlu();
    let vectors = nlu.nlu().embed(&texts).expect("embed");
    let (mut within, mut across) = (Vec::new(), Vec::new());
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            let c: f32 = vectors[i].iter().zip(&vectors[j]).map(|(a, b)| a * b).sum();
            if rows[i].1 == rows[j].1 {
                within.push(c);
            } else {
                across.push(c);
            }
        }
    }
    let q = |v: &mut Vec<f32>, p: f64| {
        v.sort_by(f32::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    println!(
        "{} questions, {} topics; cosine within a topic: p10 {:.3} median {:.3}; across: median {:.3} p99 {:.3} max {:.3}",
        rows.len(),
        rows.iter().map(|r| &r.1).collect::<BTreeSet<_>>().len(),
        q(&mut within, 0.10),
        q(&mut within, 0.5),
        q(&mut across, 0.5),
        q(&mut across, 0.99),
        q(&mut across, 1.0),
    );
    println!("threshold  groups  precision  recall  F1");
    for step in 20..=40 {
        let t = step as f32 * 0.01;
        let groups = groups_of(&texts, t);
        let mut of = BTreeMap::new();
        for (g, members) in groups.iter().enumerate() {
            for m in members {
                of.insert(m.clone(), g);
            }
        }
        let (mut tp, mut fp, mut fnn) = (0, 0, 0);
        for i in 0..texts.len() {
            for j in i + 1..texts.len() {
                let same_group = of[texts[i]] == of[texts[j]];
                let same_topic = topic[texts[i]] == topic[texts[j]];
                match (same_group, same_topic) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fnn += 1,
                    _ => {}
                }
            }
        }
        let p = tp as f64 / (tp + fp).max(1) as f64;
        let r = tp as f64 / (tp + fnn).max(1) as f64;
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        println!("{t:9.2}  {:6}  {p:9.3}  {r:6.3}  {f1:.3}", groups.len());
    }
}
