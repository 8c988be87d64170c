//! `frontdesk replay`: a support lead replays recorded conversations through the real NLU
//! and the full policy, and sees what a rules change would do before deploying it.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("replay")
        .args(args)
        .current_dir(root())
        .output()
        .expect("frontdesk runs")
}

fn outcomes(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn find<'a>(all: &'a [Value], conversation: &str) -> &'a Value {
    all.iter()
        .find(|o| o["conversation"] == conversation)
        .unwrap_or_else(|| panic!("{conversation} missing"))
}

fn fired(o: &Value) -> Vec<String> {
    o["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn example_replay_answers_routine_questions_and_escalates_the_rest() {
    let out = replay(&["data/replay_example.jsonl"]);
    let all = outcomes(&out);
    let names: Vec<&str> = all
        .iter()
        .map(|o| o["conversation"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        (1..=12).map(|i| format!("c{i:02}")).collect::<Vec<_>>()
    );
    for o in &all {
        for key in ["conversation", "status", "queue", "reasons", "replies"] {
            assert!(o.get(key).is_some(), "{key} missing in {o}");
        }
    }

    let tracked = find(&all, "c01");
    assert_eq!(tracked["status"], "bot");
    assert!(
        tracked["replies"][0].as_str().unwrap().contains("10001"),
        "{tracked}"
    );

    let slot = find(&all, "c02");
    assert_eq!(slot["status"], "bot");
    assert!(
        slot["replies"][1].as_str().unwrap().contains("delayed"),
        "{slot}"
    );

    // A refund is restated and done on the yes.
    let refund = find(&all, "c08");
    assert!(
        refund["replies"][0]
            .as_str()
            .unwrap()
            .contains("Reply yes or no"),
        "{refund}"
    );
    assert!(
        refund["replies"][1]
            .as_str()
            .unwrap()
            .contains("opened a refund request for order 10005"),
        "{refund}"
    );

    let lawyer = find(&all, "c04");
    assert_eq!(lawyer["status"], "queued");
    assert_eq!(lawyer["queue"], "priority");
    assert!(fired(lawyer).contains(&"legal or chargeback threat".to_string()));

    let angry = find(&all, "c03");
    assert_eq!(angry["queue"], "angry", "{angry}");

    let vip = find(&all, "c05");
    assert_eq!(vip["status"], "queued", "{vip}");
    assert!(fired(vip).contains(&"vip customer".to_string()), "{vip}");

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in 12 conversations"), "{stderr}");
    assert!(stderr.contains("legal or chargeback threat"), "{stderr}");
}

#[test]
fn alternative_rules_show_what_a_change_would_do() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("no-keywords.toml");
    std::fs::write(
        &rules,
        "[queues.general]\nsla_secs = 300\n\n[[rules]]\nname = \"asked for a person\"\n\
         when = \"human_request\"\nqueue = \"general\"\npriority = 30\n",
    )
    .unwrap();
    let all = outcomes(&replay(&[
        "data/replay_example.jsonl",
        "--rules",
        rules.to_str().unwrap(),
    ]));
    let lawyer = find(&all, "c04");
    assert_ne!(
        lawyer["queue"], "priority",
        "without the keyword rule: {lawyer}"
    );
    assert!(!fired(lawyer).contains(&"legal or chargeback threat".to_string()));
    assert_eq!(
        find(&all, "c03")["queue"],
        Value::Null,
        "no anger rule any more"
    );
}

#[test]
fn bad_line_and_bad_rules_are_reported_with_where() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"conversation\": \"a\", \"user_id\": \"u\", \"text\": \"hi\"}\n{\"conversation\": \"b\"}\n",
    )
    .unwrap();
    let out = replay(&[file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jsonl:2"), "{stderr}");

    let rules = dir.path().join("bad-rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"x\"\nwhen = \"anger\"\nat_least = 0.8\nqueue = \"nowhere\"\npriority = 1\n",
    )
    .unwrap();
    let out = replay(&[
        "data/replay_example.jsonl",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rules[0].queue"), "{stderr}");
}

/// The what-if on a fixture with known differences: the shipped rules plus one that sends
/// cancellations to a person. Only the cancellation (c10) changes its fate; the labels say
/// a person was needed for it, so the change gets one more labelled conversation right.
#[test]
fn what_if_shows_exactly_the_conversations_a_rules_change_moves() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = root().join("rules.toml");
    let changed = dir.path().join("rules.toml");
    let text = std::fs::read_to_string(&shipped).unwrap();
    std::fs::write(
        &changed,
        format!(
            "{text}\n[[rules]]\nname = \"cancellations to a person\"\nwhen = \"intent\"\n\
             intents = [\"cancel_order\"]\nqueue = \"general\"\npriority = 10\n"
        ),
    )
    .unwrap();
    // The example, labelled: c10 (a cancellation) needs a person, c06 does not.
    let labelled = dir.path().join("labelled.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(root().join("data/replay_example.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            match v["conversation"].as_str().unwrap() {
                "c10" => v["expected"] = "escalate".into(),
                "c06" => v["expected"] = "bot".into(),
                _ => {}
            }
            v.to_string()
        })
        .collect();
    std::fs::write(&labelled, lines.join("\n")).unwrap();
    let html = dir.path().join("whatif.html");
    let out = replay(&[
        labelled.to_str().unwrap(),
        "--rules",
        changed.to_str().unwrap(),
        "--baseline",
        shipped.to_str().unwrap(),
        "--json",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w: Value = serde_json::from_slice(&out.stdout).unwrap();
    let changed: Vec<(&str, &str)> = w["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["conversation"].as_str().unwrap(),
                c["change"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(changed, [("c10", "newly_escalated")], "{w}");
    assert!(
        w["changed"][0]["after_rules"]
            .as_array()
            .unwrap()
            .contains(&"cancellations to a person".into()),
        "{w}"
    );
    assert_eq!(w["changed"][0]["label"], true);
    assert_eq!(w["conversations"], 12);
    assert_eq!(
        w["escalated_after"].as_u64().unwrap(),
        w["escalated_before"].as_u64().unwrap() + 1
    );
    assert_eq!(w["labels_before"]["labelled"], 2);
    assert_eq!(w["labels_before"]["missed"], 1);
    assert_eq!(w["labels_after"]["missed"], 0);
    assert_eq!(
        w["labels_after"]["right"].as_u64().unwrap(),
        w["labels_before"]["right"].as_u64().unwrap() + 1
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("I want to cancel order 10009"),
        "the page names it"
    );
    assert!(page.contains("newly escalated"));
}
