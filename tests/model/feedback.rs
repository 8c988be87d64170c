//! Learning from escalations with the real model: customers whose calm requests the
//! frustration head reads as upset are escalated, the agent marks those escalations not
//! needed (and real anger needed), and `frontdesk train frustration --feedback-file` makes
//! the head decide every marked message as marked while its held-out figure stays within
//! 0.5 points of the same retraining without the marks; the head in force is kept.

use std::path::Path;
use std::process::Command;

use frontdesk::cockpit::feedback::examples::line;
use serde_json::{json, Value};

use crate::support::repo;
use crate::support::server::{serve, ANA};

/// Routine requests worded with some edge: the shipped frustration head reads each as upset
/// (frustrated + angry) at 0.9 or more, so "frustrated message" sends them to a person.
const NOT_NEEDED: [&str; 5] = [
    "it's a bit annoying that I have to log in again every time",
    "why does every page ask me to accept cookies again",
    "this is the third email I've had about the same sale, please stop them",
    "why on earth is there no phone number on your site",
    "why is my order still processing after a day",
];

/// Customers a person had to see.
const NEEDED: [&str; 2] = [
    "I've asked three times now and nobody has answered, this is unacceptable",
    "you charged me twice and no one is replying, I'm furious",
];

/// Customers write, ana claims each escalation and marks it; the export lines of the store.
async fn marked_conversations(dir: &Path) -> Vec<String> {
    let s = serve(dir).await;
    let ana = s.login(ANA).await;
    let mut lines = Vec::new();
    for (i, text) in NOT_NEEDED.iter().chain(&NEEDED).enumerate() {
        let turn = s.say(&format!("fb-{i}"), text).await;
        assert_eq!(
            turn["status"], "queued",
            "the head must escalate {text:?}: {turn}"
        );
        let id = turn["conversation_id"].as_str().unwrap().to_string();
        ana.act(&id, "claim", None).await;
        let mark = if NEEDED.contains(text) {
            "needed"
        } else {
            "not_needed"
        };
        let (status, body) = ana
            .post(
                &format!("/console/api/conversations/{id}/feedback"),
                Some(json!({ "mark": mark })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        ana.act(&id, "close", None).await;
        let cid = frontdesk::message::ConversationId(id);
        let record = s.server.store.conversation(&cid).await.unwrap().unwrap();
        let messages = s.server.store.messages(&cid).await.unwrap();
        let l = line(&record, &messages).expect("a marked conversation has a line");
        lines.push(serde_json::to_string(&l).unwrap());
    }
    s.shutdown().await;
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_retrain_the_frustration_head_and_leave_held_out_figures() {
    let dir = tempfile::tempdir().unwrap();
    let lines = marked_conversations(&dir.path().join("server")).await;
    let file = dir.path().join("F.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let head = models.join("frustration.safetensors");
    std::fs::copy(repo("models/frustration.safetensors"), &head).unwrap();
    let shipped_data = std::fs::read(repo("data/frustration/train.tsv")).unwrap();

    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(repo(""))
        .args(["train", "frustration", "--json", "--feedback-file"])
        .arg(&file)
        .arg("--models-dir")
        .arg(&models)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!(
        "train frustration --feedback-file: {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        serde_json::to_string_pretty(&report).unwrap()
    );

    // Every marked message: the five routine ones calm, the two upset ones as they were.
    let marked = &report["as_marked"];
    assert_eq!(marked["of"], 7, "{report}");
    assert_eq!(
        marked["feedback"], 7,
        "the retrained head decides every mark: {report}"
    );
    assert!(
        marked["in_force"].as_u64().unwrap() <= 2,
        "before, the head escalated the routine ones: {report}"
    );
    for e in report["examples"].as_array().unwrap() {
        let label = e["example"]["label"].as_str().unwrap();
        let (before, after) = (
            e["in_force"].as_f64().unwrap(),
            e["feedback"].as_f64().unwrap(),
        );
        if label == "calm" {
            assert!(before >= 0.9 && after < 0.9, "{e}");
        }
    }

    // Held out (the odd lines of val.tsv, never chosen on): within 0.5 points of the same
    // retraining without the marks.
    let held = report["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part"] == "held out")
        .unwrap();
    for figure in ["accuracy", "macro_f1"] {
        let (with, without) = (
            held["feedback"][figure].as_f64().unwrap(),
            held["baseline"][figure].as_f64().unwrap(),
        );
        assert!(
            (with - without).abs() <= 0.005,
            "{figure}: {with} vs {without}: {held}"
        );
    }

    // The examples are kept apart, the shipped data untouched, the old head kept.
    let tsv = std::fs::read_to_string(models.join("feedback/frustration.tsv")).unwrap();
    assert_eq!(
        tsv.lines().filter(|l| l.starts_with("calm\t")).count(),
        5,
        "{tsv}"
    );
    assert_eq!(
        std::fs::read(repo("data/frustration/train.tsv")).unwrap(),
        shipped_data
    );
    let kept = report["kept"].as_str().expect("the head in force is kept");
    assert!(kept.contains("frustration.before-feedback-"), "{kept}");
    assert_eq!(
        std::fs::read(kept).unwrap(),
        std::fs::read(repo("models/frustration.safetensors")).unwrap()
    );
    assert_ne!(std::fs::read(&head).unwrap(), std::fs::read(kept).unwrap());
}
