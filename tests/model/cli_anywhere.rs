//! An installed binary works from any directory: `nlu`, `replay`, `eval`, `init` and
//! `serve` run in an empty folder with nothing of the repository beside them (the shipped
//! intents, rules, heads and demo shop are built in; the model comes from the cache).

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `frontdesk ARGS` in `dir`, with no `FRONTDESK_*` variable from the caller except the cache.
fn frontdesk(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("FRONTDESK_") && name != "FRONTDESK_CACHE" {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd.spawn().expect("frontdesk runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nlu_runs_in_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = frontdesk(
        dir.path(),
        &["nlu"],
        "where is my order 10002?\nI want to speak to a human\n",
    );
    let lines: Vec<Value> = ok(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["intent"], "track_order", "{}", lines[0]);
    assert_eq!(lines[1]["intent"], "contact_human_agent", "{}", lines[1]);
    // The built-in frustration head answers on the same pass: three probabilities.
    for v in &lines {
        let f = &v["frustration"];
        let sum: f64 = ["calm", "frustrated", "angry"]
            .iter()
            .map(|k| {
                f[k].as_f64()
                    .unwrap_or_else(|| panic!("frustration.{k} in {v}"))
            })
            .sum();
        assert!((sum - 1.0).abs() < 1e-3, "{v}");
    }
    // Nothing was written next to the caller: the defaults live in the cache.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn replay_and_eval_run_in_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(ROOT).join("data/replay_example.jsonl");
    let out = frontdesk(dir.path(), &["replay", example.to_str().unwrap()], "");
    let text = ok(&out);
    assert_eq!(text.lines().count(), 12, "{text}");
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["status"], "bot", "{first}");

    let test = Path::new(ROOT).join("tests/data/in_scope_val.csv");
    let out = frontdesk(
        dir.path(),
        &[
            "eval",
            "intents",
            "--test",
            test.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    let report: Value = serde_json::from_str(&ok(&out)).expect("a JSON report");
    assert!(
        report["accuracy"].as_f64().unwrap() > 0.8,
        "the built-in intents should recognise their own validation set: {report}"
    );
}

#[tokio::test]
async fn init_writes_editable_defaults_that_serve_uses() {
    let dir = tempfile::tempdir().unwrap();
    let lead = dir.path().join("shop-bot");
    ok(&frontdesk(
        dir.path(),
        &["init", lead.to_str().unwrap()],
        "",
    ));
    assert!(lead.join("intents/track_order.yaml").is_file());
    assert!(lead.join("rules.toml").is_file());
    assert!(lead.join("frontdesk.toml").is_file());
    // A second init never overwrites a lead's edits.
    let again = frontdesk(dir.path(), &["init", lead.to_str().unwrap()], "");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // The lead's own answer is what the bot says.
    let greet = lead.join("intents/greet.yaml");
    let text = std::fs::read_to_string(&greet).unwrap();
    let start = text.find("text:").expect("greet has a response text");
    let end = start + text[start..].find('\n').unwrap();
    let edited = format!(
        "{}text: \"Ahoy from the shop-bot folder!\"{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&greet, edited).unwrap();

    // The REST API needs a key: made in the lead's folder, found by the server there.
    let key = ok(&frontdesk(&lead, &["api-key", "create", "shop"], ""))
        .trim()
        .to_string();
    assert!(key.starts_with("fd_"), "{key}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(&lead)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut url = None;
    let mut log = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("listening on http://").nth(1) {
            url = Some(format!(
                "http://{}",
                rest.split_whitespace().next().unwrap_or("")
            ));
            break;
        }
    }
    let url = url.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("serve did not start:\n{log}")
    });
    let body: Value = match reqwest::Client::new()
        .post(format!("{url}/api/v1/messages"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"user_id": "u1", "text": "hello there"}))
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        body["replies"][0]["text"], "Ahoy from the shop-bot folder!",
        "{body}"
    );
    // The store went where the lead's config says, beside the config.
    assert!(lead.join("frontdesk-data").is_dir());
}

/// `bench serve --external` runs `frontdesk serve` as a process of its own (here with int8
/// weights, passed through the environment), drives it over loopback, reports every message
/// answered with CPU for the server's threads, and stops the server when it is done.
#[test]
fn bench_serve_drives_a_server_in_a_process_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(dir.path())
        .args([
            "bench",
            "serve",
            "--external",
            "--messages",
            "60",
            "--concurrency",
            "4",
            "--rate",
            "20",
            "--rate-secs",
            "1",
            "--conversations",
            "20",
            "--json",
        ])
        .env("FRONTDESK_WEIGHTS", "int8")
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(ok(&out).trim()).expect("one JSON report");
    assert_eq!(report["throughput_latency"]["errors"], 0, "{report}");
    assert_eq!(report["fixed_rate_latency"]["errors"], 0, "{report}");
    assert!(report["messages_per_sec"].as_f64().unwrap() > 0.0);
    let threads = report["cpu_ms_per_message_by_thread"].to_string();
    assert!(threads.contains("server: nlu-worker"), "{threads}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("did not stop cleanly"), "{stderr}");
    // The server it started has stopped and was reaped.
    let pid = report["external_server_pid"]
        .as_u64()
        .expect("the server's pid");
    assert!(pid > 0 && !Path::new(&format!("/proc/{pid}")).exists());
}
