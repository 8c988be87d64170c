//! Two nodes on one PostgreSQL (a throwaway cluster), killed with SIGKILL in turn while REST
//! customers write to both through no balancer but their own: each message goes to the next
//! node, and one that gets no answer is sent again, with the same id, to the other node.
//! Then the store is read back: every acknowledged message is stored exactly once, with its
//! answer once (a message sent again gets the stored outcome, not a second turn).
//!
//! ```sh
//! cargo test --release --test faults two_nodes -- --ignored --nocapture
//! ```
//! `FAULT_KILLS` (default 20) kills, alternating between the nodes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk::message::{ConversationId, Speaker};
use frontdesk::store::Location;

use crate::process::{self, Server};

/// Customers writing at once.
const CUSTOMERS: usize = 12;

fn write_config(path: &Path, port: u16, data: &Path, url: &str) {
    let toml = format!(
        "[server]\nbind = \"127.0.0.1:{port}\"\ndata_dir = '{}'\n\n[store]\nurl = \"{url}\"\nlease_secs = 3\n\n{}",
        data.display(),
        crate::generous_limits(),
    );
    std::fs::write(path, toml).expect("write frontdesk.toml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the two-node kill campaign: real binaries, a PostgreSQL cluster, the model (minutes)"]
async fn two_nodes_killed_in_turn_lose_and_repeat_nothing() {
    let kills: usize = std::env::var("FAULT_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let cluster = frontdesk::store::cluster::Cluster::start().expect("a throwaway PostgreSQL");
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    for n in 0..2 {
        let port = process::free_port();
        let config = dir.path().join(format!("node-{n}.toml"));
        write_config(
            &config,
            port,
            &dir.path().join(format!("data-{n}")),
            &cluster.url(),
        );
        let url = format!("http://127.0.0.1:{port}");
        servers.push(Server::new(
            &config,
            &dir.path().join(format!("node-{n}.log")),
            url.clone(),
        ));
        urls.push(url);
    }
    let key = process::create_api_key(&dir.path().join("node-0.toml"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for server in &mut servers {
        server.start();
        server.wait_ready(&http, crate::START_LIMIT).await;
    }
    println!("two nodes ready; data and logs in {}", dir.path().display());

    let stop = Arc::new(AtomicBool::new(false));
    let mut customers = Vec::new();
    for c in 0..CUSTOMERS {
        let (http, urls, key, stop) = (http.clone(), urls.clone(), key.clone(), stop.clone());
        customers.push(tokio::spawn(async move {
            let mut acked: Vec<String> = Vec::new();
            let mut retried = 0usize;
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let reference = format!("r{c}.{i}");
                let body = serde_json::json!({
                    "user_id": format!("two-nodes-{c}"),
                    "text": format!("{reference} what are your delivery options"),
                    "message_id": reference,
                });
                let mut node = (c + i) % 2;
                let give_up = Instant::now() + Duration::from_secs(120);
                loop {
                    let sent = http
                        .post(format!("{}/api/v1/messages", urls[node]))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await;
                    if matches!(&sent, Ok(r) if r.status().is_success()) {
                        acked.push(reference.clone());
                        break;
                    }
                    assert!(Instant::now() < give_up, "{reference} never acknowledged");
                    retried += 1;
                    node = 1 - node;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                i += 1;
            }
            (acked, retried)
        }));
    }

    let started = Instant::now();
    for k in 0..kills {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let n = k % 2;
        servers[n].kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        servers[n].start();
        servers[n].wait_ready(&http, crate::START_LIMIT).await;
        if (k + 1) % 5 == 0 {
            println!(
                "  {} kills, {:.0} s",
                k + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut retried = 0;
    for c in customers {
        let (a, r) = c.await.unwrap();
        acked.extend(a);
        retried += r;
    }
    for server in &mut servers {
        assert!(
            server.stop(Duration::from_secs(20)),
            "a clean stop at the end"
        );
    }

    let store = frontdesk::store::open(&Location::Postgres(cluster.url()))
        .await
        .expect("open the store after the campaign");
    let mut stored: HashMap<String, usize> = HashMap::new();
    let mut answered_twice = Vec::new();
    for r in store
        .records()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.table == "conversations")
    {
        let messages = store
            .messages(&ConversationId(r.key.clone()))
            .await
            .unwrap();
        for (i, m) in messages.iter().enumerate() {
            if m.from != Speaker::Customer {
                continue;
            }
            let reference = m.text.split(' ').next().unwrap_or("").to_string();
            *stored.entry(reference.clone()).or_default() += 1;
            // The bot's answer to it, up to the next customer message: one turn's worth.
            let answers: Vec<&str> = messages[i + 1..]
                .iter()
                .take_while(|n| n.from != Speaker::Customer)
                .map(|n| n.text.as_str())
                .collect();
            let unique: std::collections::HashSet<&&str> = answers.iter().collect();
            if answers.is_empty() || unique.len() < answers.len() {
                answered_twice.push((reference, answers.len()));
            }
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|r| !stored.contains_key(*r)).collect();
    let doubled: Vec<(&String, &usize)> = stored.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "two nodes, {kills} kills in {:.0} s: {} messages acknowledged ({retried} sent again to the other node), {} stored; lost {}, stored twice {}, answers missing or repeated {}",
        started.elapsed().as_secs_f64(),
        acked.len(),
        stored.len(),
        lost.len(),
        doubled.len(),
        answered_twice.len()
    );
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(doubled.is_empty(), "stored more than once: {doubled:?}");
    assert!(
        answered_twice.is_empty(),
        "answers missing or repeated: {answered_twice:?}"
    );
}
