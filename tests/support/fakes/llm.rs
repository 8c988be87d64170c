//! A fake OpenAI-compatible endpoint on 127.0.0.1 (axum): scripted replies, plain and SSE
//! streaming, recorded requests. The real async-openai client talks to it.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One scripted reply of the fake endpoint.
#[derive(Clone)]
pub enum Reply {
    /// A plain completion whose message content is this text (70 tokens of usage).
    Content(String),
    /// An HTTP error, with an optional Retry-After.
    Status(u16, Option<&'static str>),
    /// SSE deltas: the first part at once, the rest after the test opens the gate.
    Stream(Vec<&'static str>, Vec<&'static str>),
    /// A plain completion sent only after the test opens the gate.
    Gated(String),
    /// Never answers.
    Hang,
}

#[derive(Clone, Default)]
pub struct Fake {
    pub script: Arc<Mutex<VecDeque<Reply>>>,
    pub calls: Arc<Mutex<Vec<(Instant, Value)>>>,
    pub gate: Arc<Notify>,
}

impl Fake {
    pub fn then(&self, reply: Reply) -> &Self {
        self.script.lock().unwrap().push_back(reply);
        self
    }

    pub fn calls(&self) -> Vec<(Instant, Value)> {
        self.calls.lock().unwrap().clone()
    }

    /// Serves on a free loopback port; returns the base URL with /v1.
    pub async fn start(&self) -> String {
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/v1")
    }
}

async fn completions(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    fake.calls.lock().unwrap().push((Instant::now(), body));
    let reply = fake.script.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Content(text)) => Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}
        }))
        .into_response(),
        Some(Reply::Status(code, retry_after)) => {
            let body = Json(
                json!({"error": {"message": "scripted failure", "type": "scripted",
                                             "param": null, "code": null}}),
            );
            let mut response = (StatusCode::from_u16(code).unwrap(), body).into_response();
            if let Some(after) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(after));
            }
            response
        }
        Some(Reply::Stream(first, rest)) => {
            let gate = fake.gate.clone();
            let chunk = |text: &str| {
                Event::default().data(
                    json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
                           "model": "fake", "choices": [{"index": 0,
                           "delta": {"content": text}, "finish_reason": null}]})
                    .to_string(),
                )
            };
            let first: Vec<Event> = first.iter().map(|t| chunk(t)).collect();
            let mut rest: Vec<Event> = rest.iter().map(|t| chunk(t)).collect();
            rest.push(
                Event::default().data(
                    json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
                       "model": "fake", "choices": [],
                       "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}})
                    .to_string(),
                ),
            );
            rest.push(Event::default().data("[DONE]"));
            let later = futures::stream::once(async move {
                gate.notified().await;
                futures::stream::iter(rest)
            })
            .flatten();
            let events = futures::stream::iter(first)
                .chain(later)
                .map(Ok::<_, Infallible>);
            Sse::new(events).into_response()
        }
        Some(Reply::Gated(text)) => {
            fake.gate.notified().await;
            Json(json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}
            }))
            .into_response()
        }
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        None => (StatusCode::INTERNAL_SERVER_ERROR, "script ended").into_response(),
    }
}

/// A structured answer as the model writes it: sources and hand-off first.
pub fn answer_json(answer: &str, cited: &[&str], handoff: bool) -> String {
    json!({"cited": cited, "handoff": handoff, "answer": answer}).to_string()
}
