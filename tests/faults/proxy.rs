//! A pass-through in front of a platform fake that can make sends time out: the server's
//! `api_url` points here, every call is forwarded to the fake unchanged, except that the
//! next `n` sends (Telegram `sendMessage`, Discord `POST /channels/{id}/messages`) are held
//! for [`HOLD`] without reaching the fake and then answered 504, as a gateway that gave up
//! would. Longer than teloxide's 17 s request timeout, so Telegram's client gives up first;
//! serenity has no timeout of its own and waits it out.
//!
//! It also notes every send that reached the fake, with its answer and when, so that a
//! message delivered twice can be placed next to the kills.
//!
//! The Discord gateway is not proxied: `GET /gateway` names the fake's socket directly.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const HOLD: Duration = Duration::from_secs(18);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Telegram,
    Discord,
}

impl Platform {
    fn is_send(self, method: &Method, path: &str) -> bool {
        match self {
            Platform::Telegram => {
                method == Method::POST && path.to_ascii_lowercase().ends_with("/sendmessage")
            }
            Platform::Discord => {
                method == Method::POST
                    && path.starts_with("/api/v10/channels/")
                    && path.ends_with("/messages")
            }
        }
    }

    /// Where a send goes (Telegram chat, Discord channel) and its text.
    fn target(self, path: &str, body: &[u8]) -> Option<(u64, String)> {
        let body: serde_json::Value = serde_json::from_slice(body).ok()?;
        match self {
            Platform::Telegram => Some((
                body["chat_id"].as_i64()? as u64,
                body["text"].as_str()?.to_string(),
            )),
            Platform::Discord => Some((
                path.strip_prefix("/api/v10/channels/")?
                    .strip_suffix("/messages")?
                    .parse()
                    .ok()?,
                body["content"].as_str()?.to_string(),
            )),
        }
    }

    fn gave_up(self) -> Response {
        let body = match self {
            Platform::Telegram => {
                json!({"ok": false, "error_code": 504, "description": "Gateway Timeout"})
            }
            Platform::Discord => json!({"message": "504: Gateway Timeout", "code": 0}),
        };
        (StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response()
    }
}

struct Shared {
    platform: Platform,
    upstream: String,
    client: reqwest::Client,
    hold_next: AtomicUsize,
    held: AtomicUsize,
    sends: Mutex<Vec<SendAttempt>>,
}

/// A send the fake answered.
#[derive(Debug, Clone)]
pub struct SendAttempt {
    /// When the answer came back from the fake.
    pub at: Instant,
    pub to: u64,
    pub text: String,
    pub status: u16,
    /// How long the fake took to answer it.
    pub took: Duration,
}

pub struct Proxy {
    /// The base URL to give the server instead of the fake's.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(platform: Platform, upstream: &str) -> Proxy {
        let shared = Arc::new(Shared {
            platform,
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            hold_next: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            sends: Mutex::default(),
        });
        let router = Router::new().fallback(forward).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("proxy");
        });
        Proxy { url, shared, task }
    }

    /// The next `n` sends time out.
    pub fn time_out_next(&self, n: usize) {
        self.shared.hold_next.fetch_add(n, Ordering::SeqCst);
    }

    /// Sends held so far.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Every send the fake answered, in order.
    pub fn sends(&self) -> Vec<SendAttempt> {
        self.shared.sends.lock().unwrap().clone()
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let is_send = shared.platform.is_send(&method, path);
    if is_send
        && shared
            .hold_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        shared.held.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(HOLD).await;
        return shared.platform.gave_up();
    }
    let target = format!(
        "{}{}",
        shared.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or(path)
    );
    // A send whose body cannot be read is still counted (to no chat, with no text).
    let sent = is_send.then(|| {
        shared
            .platform
            .target(path, &body)
            .unwrap_or((0, String::new()))
    });
    let mut request = shared.client.request(method, target).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let asked = Instant::now();
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    if let Some((to, text)) = sent {
        shared.sends.lock().unwrap().push(SendAttempt {
            at: Instant::now(),
            took: asked.elapsed(),
            to,
            text,
            status: status.as_u16(),
        });
    }
    let mut out_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !["content-length", "transfer-encoding", "connection"].contains(&name.as_str()) {
            out_headers.insert(name.clone(), value.clone());
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    (status, out_headers, bytes).into_response()
}
