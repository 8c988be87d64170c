//! `kill -9` during load loses nothing a client saw acknowledged: the real `frontdesk serve`
//! binary runs as a child process, clients send messages, the process is killed mid-load,
//! restarted on the same data dir, and every acknowledged message must be in its stored
//! conversation (and every acknowledged queue placement still in its queue).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The server process; killed when dropped, so a failing assertion leaves nothing behind.
struct Server(Child);

impl Server {
    /// `kill -9` (SIGKILL on unix) and reap.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `frontdesk api-key create` on the data dir (before the server starts); returns the key.
fn create_key(data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(ROOT)
        .args([
            "api-key",
            "create",
            "kill-test",
            "--config",
            "frontdesk.example.toml",
            "--data",
        ])
        .arg(data)
        .output()
        .expect("frontdesk api-key create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The password of the `demo` agent that serve made (the example config lists no agents).
fn demo_password(data: &Path) -> String {
    std::fs::read_to_string(data.join(frontdesk::app::DEMO_AGENT_FILE))
        .expect("serve keeps the demo agent's password in the data dir")
        .trim()
        .to_string()
}

/// Starts `frontdesk serve` on a free port; returns the child and its base URL.
fn spawn_server(data: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(ROOT)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--config",
            "frontdesk.example.toml",
            "--data",
        ])
        .arg(data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start frontdesk serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(format!("http://{addr}"));
                    sent = true;
                }
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("the server logs its address once it listens");
    (Server(child), url)
}

async fn wait_healthy(client: &reqwest::Client, url: &str) {
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{url}/health")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server at {url} never became healthy");
}

#[derive(Clone, Debug)]
struct Acked {
    user: String,
    text: String,
    conversation: String,
    status: String,
    queue: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let (mut child, url) = spawn_server(dir.path());
    wait_healthy(&client, &url).await;

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let kill_after = 150;
    let mut clients = Vec::new();
    for c in 0..12 {
        let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
        let key = key.clone();
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let user = format!("kill-{c}-{}", i % 4);
                let text = if i % 5 == 4 {
                    format!("I want to talk to a human agent (client {c} message {i})")
                } else {
                    format!("where is my order 10001 (client {c} message {i})")
                };
                let res = client
                    .post(format!("{url}/api/v1/messages"))
                    .bearer_auth(&key)
                    .json(&json!({"user_id": user, "text": text}))
                    .send()
                    .await;
                let Ok(res) = res else { break };
                if !res.status().is_success() {
                    break;
                }
                let Ok(body) = res.json::<Value>().await else {
                    break;
                };
                acked.lock().unwrap().push(Acked {
                    user,
                    text,
                    conversation: body["conversation_id"].as_str().unwrap().to_string(),
                    status: body["status"].as_str().unwrap().to_string(),
                    queue: body["queue"]["name"].as_str().map(String::from),
                });
            }
        }));
    }
    // Kill once enough messages were acknowledged, while the clients keep sending. (The
    // limit only turns a server that stopped answering into a failure instead of a hang.)
    let guard = std::time::Instant::now();
    while acked.lock().unwrap().len() < kill_after {
        assert!(
            guard.elapsed() < Duration::from_secs(300),
            "the server stopped acknowledging messages ({} so far)",
            acked.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= kill_after);
    eprintln!("{} messages acknowledged before the kill", acked.len());

    let (child, url) = spawn_server(dir.path());
    wait_healthy(&client, &url).await;
    let login: Value = client
        .post(format!("{url}/console/api/login"))
        .json(&json!({"name": "demo", "password": demo_password(dir.path())}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_string();
    let get = |path: String| {
        let req = client.get(format!("{url}{path}")).bearer_auth(&token);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    let mut missing = Vec::new();
    let mut transcripts = std::collections::HashMap::new();
    for a in &acked {
        if !transcripts.contains_key(&a.conversation) {
            let t = get(format!("/api/v1/conversations/{}", a.conversation)).await;
            transcripts.insert(a.conversation.clone(), t);
        }
        let t = &transcripts[&a.conversation];
        let stored = t["messages"].as_array().is_some_and(|ms| {
            ms.iter()
                .any(|m| m["from"]["role"] == "customer" && m["text"] == a.text.as_str())
        });
        if !stored {
            missing.push(format!("{} {:?}", a.user, a.text));
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost: {missing:?}",
        missing.len()
    );

    // The last acknowledged state of each waiting conversation is still in its queue.
    let queues = get("/api/v1/queues".into()).await;
    let waiting: std::collections::HashSet<(String, String)> = queues
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| {
            q["entries"].as_array().unwrap().iter().map(move |e| {
                (
                    q["name"].as_str().unwrap().to_string(),
                    e["conversation_id"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    let mut last = std::collections::HashMap::new();
    for a in &acked {
        last.insert(a.user.clone(), a.clone());
    }
    for a in last.values().filter(|a| a.status == "queued") {
        let queue = a.queue.clone().unwrap();
        assert!(
            waiting.contains(&(queue.clone(), a.conversation.clone())),
            "{a:?} left {queue}"
        );
    }
    drop(child);
}
