//! Escalation on the real model: the held-out third of the phrases a person would take
//! (`data/escalation/person_requests.txt`, `threats.txt`: every third line; the other two
//! thirds are examples of `contact_human_agent` and `threat_to_escalate`) reach a person
//! through an intent or a rule of the shipped `rules.toml`; and `frontdesk eval escalation`
//! scores a tiny labelled file.

use frontdesk::nlu::Analysis;
use frontdesk::policy::{decide, Rules, Situation};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every third line (1-based: lines 3, 6, 9...) of a data file: the held-out ones.
fn held_out(file: &str) -> Vec<String> {
    std::fs::read_to_string(root().join("data/escalation").join(file))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .filter(|(i, _)| i % 3 == 2)
        .map(|(_, l)| l.to_string())
        .collect()
}

/// `frontdesk nlu` on these lines.
fn understand(lines: &[String]) -> Vec<Analysis> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("nlu")
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("frontdesk runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an analysis per line"))
        .collect()
}

/// The held-out lines that the shipped rules would leave with the bot (first message of a
/// conversation, no profile).
fn missed(file: &str) -> (usize, Vec<String>) {
    let rules = Rules::load(&root().join("rules.toml")).unwrap();
    let lines = held_out(file);
    let analyses = understand(&lines);
    assert_eq!(analyses.len(), lines.len());
    let missed = analyses
        .iter()
        .filter(|a| {
            let history = [a.sentiment_scores.negative];
            let s = Situation {
                analysis: a,
                intent: &a.intent,
                negative_history: &history,
                tier: None,
                lifetime_value: None,
                order_value: None,
                unresolved_turns: u32::from(a.intent == frontdesk::nlu::OUT_OF_SCOPE),
                frustration: 0.0,
                frustration_reasons: &[],
                order_units: None,
                awaiting_look_up: false,
                judge: None,
                aimed_elsewhere: false,
                acknowledgement: false,
            };
            decide(&rules, &s).is_none()
        })
        .map(|a| format!("{} ({})", a.text, a.intent))
        .collect();
    (lines.len(), missed)
}

#[test]
fn held_out_requests_for_a_person_reach_a_person() {
    let (n, missed) = missed("person_requests.txt");
    assert!(n >= 40);
    assert!(
        missed.len() * 10 <= n,
        "{} of {n} missed: {missed:#?}",
        missed.len()
    );
}

#[test]
fn held_out_threats_reach_a_person() {
    let (n, missed) = missed("threats.txt");
    assert!(n >= 25);
    assert!(
        missed.len() * 10 <= n,
        "{} of {n} missed: {missed:#?}",
        missed.len()
    );
}

#[test]
fn eval_escalation_scores_a_tiny_labelled_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.jsonl");
    let lines = [
        r#"{"conversation":"a","user_id":"u1","text":"I want to speak to a human right now","expected":"escalate","why":"person request"}"#,
        r#"{"conversation":"b","user_id":"u2","text":"where is my order 10002","expected":"bot","why":"tracking"}"#,
        r#"{"conversation":"b","user_id":"u2","text":"great, thank you","expected":"bot","why":"tracking"}"#,
        r#"{"conversation":"c","user_id":"u3","text":"my lawyer will be in touch about this","expected":"escalate","why":"legal threat"}"#,
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["eval", "escalation", "--json", "--test"])
        .arg(&file)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["conversations"], 3);
    assert_eq!(r["should_escalate"], 2);
    assert_eq!(r["precision"], 1.0, "{r:#}");
    assert_eq!(r["recall"], 1.0, "{r:#}");
    assert_eq!(r["false_escalations"], 0);
    assert!(r["rules"]["legal or chargeback threat"]["true_positives"] == 1);
    let whys: Vec<&str> = r["per_why"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["why"].as_str().unwrap())
        .collect();
    assert_eq!(whys, ["legal threat", "person request", "tracking"]);
    assert_eq!(r["misses"].as_array().unwrap().len(), 0);

    // Labels in their own file; the tables for a person.
    let plain = dir.path().join("plain.jsonl");
    std::fs::write(
        &plain,
        r#"{"conversation":"x","user_id":"u","text":"where is my order 10002"}"#.to_string() + "\n",
    )
    .unwrap();
    let labels = dir.path().join("labels.jsonl");
    std::fs::write(
        &labels,
        r#"{"conversation":"x","expected":"escalate","why":"made up"}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["eval", "escalation", "--test"])
        .arg(&plain)
        .arg("--labels")
        .arg(&labels)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("recall 0.000"), "{text}");
    assert!(text.contains("x [missed] made up"), "{text}");
}

/// `eval escalation --judge`: the local reading alone and with the LLM judge (a fake
/// OpenAI-compatible endpoint on 127.0.0.1, reached through the real client), side by side,
/// with what the judge cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_escalation_with_the_judge_reports_both_readings_and_its_cost() {
    use crate::support::fakes::llm::{Fake, Reply};
    let fake = Fake::default();
    // a verdict for every request (an answer-task call, if one is made, reads it as a
    // malformed answer and the bot answers alone); only the message the stakes head is unsure
    // about is put to the judge
    for _ in 0..6 {
        fake.then(Reply::Content(
            r#"{"person": true, "stakes": ["safety"], "reason": "a cable that gets warm"}"#.into(),
        ));
    }
    let url = fake.start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("three.tsv");
    std::fs::write(
        &file,
        "person\tsafety\tthe cable on the lamp gets quite warm, is that normal?\n\
         person\tsafety\tthe blender smells a bit like burning plastic\n\
         bot\troutine\tdo you deliver on saturdays?\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["eval", "escalation", "--judge", "--json", "--test"])
        .arg(&file)
        .env("FRONTDESK_LLM_URL", &url)
        .current_dir(root())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // alone, the local reading keeps the warm cable with the bot; the judge sends it on
    assert_eq!(r["local"]["recall"], 0.5, "{r:#}");
    assert_eq!(r["judge"]["recall"], 1.0, "{r:#}");
    assert_eq!(r["judge"]["false_escalations"], 0, "{r:#}");
    assert_eq!(r["judge_calls"], 1, "{r:#}");
    assert_eq!(r["judge_tokens"], 70, "{r:#}");
    let verdicts = fake
        .calls()
        .iter()
        .filter(|(_, b)| b["response_format"]["json_schema"]["name"] == "escalation_verdict")
        .count();
    assert_eq!(verdicts, 1);
    // without an LLM, --judge says what to set
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["eval", "escalation", "--judge", "--test"])
        .arg(&file)
        .env_remove("FRONTDESK_LLM_URL")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("llm.url"));
}
