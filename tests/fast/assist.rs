//! What helps the agents in the console, through the real server: canned replies filled in
//! for a conversation (no LLM needed), a suggested reply and the handoff summary from an
//! LLM (a small fake OpenAI-compatible endpoint on 127.0.0.1 that answers by task), and
//! who may ask for them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use frontdesk::desk::DeskEventKind;
use frontdesk::message::ConversationId;
use frontdesk::server::auth::CustomerClaims;
use serde_json::{json, Value};

use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, customer, serve_keyword, serve_with, TestServer, ANA};

/// Emma Becker (C1001), signed in by the shop, asks about her order 10001 (DHL, shipped).
fn emma() -> CustomerClaims {
    CustomerClaims {
        name: Some("Emma Becker".into()),
        ..customer("C1001", None, None)
    }
}

/// The conversation of Emma asking about 10001 (answered by the bot).
async fn emma_asks(s: &TestServer) -> String {
    let turn = s
        .say_as(
            "assist-emma",
            &emma(),
            "where is my order 10001? write to emma.becker@example.com",
        )
        .await;
    turn["conversation_id"].as_str().unwrap().to_string()
}

fn texts(found: &Value) -> Vec<String> {
    found["replies"]
        .as_array()
        .unwrap_or_else(|| panic!("no replies in {found}"))
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn canned_replies_are_filled_in_for_the_conversation_and_searched() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let id = emma_asks(&s).await;
    let ana = s.login(ANA).await;

    let (status, all) = ana
        .get(&format!("/console/api/conversations/{id}/canned"))
        .await;
    assert_eq!(status, 200, "{all}");
    assert!(texts(&all).len() >= 8, "{all}");
    assert_eq!(all["can_suggest"], false, "no LLM configured");

    let (status, found) = ana
        .get(&format!(
            "/console/api/conversations/{id}/canned?q=Tracking%20LINK"
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    let found = texts(&found);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0],
        "Hi Emma, your order 10001 is on its way. You can follow the parcel here: \
         https://shop.example/track/JJD002553714997 (DHL, tracking number JJD002553714997)."
    );

    // Every word must match, in any case; the agent's own name fills {{ agent.name }}.
    let (_, refunds) = ana
        .get(&format!("/console/api/conversations/{id}/canned?q=refund"))
        .await;
    let titles: Vec<&str> = refunds["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert!(
        !titles.is_empty() && titles.len() < texts(&all).len(),
        "{refunds}"
    );
    for r in refunds["replies"].as_array().unwrap() {
        let both = format!("{} {}", r["title"], r["text"]).to_lowercase();
        assert!(both.contains("refund"), "{r}");
    }
    let (_, closing) = ana
        .get(&format!("/console/api/conversations/{id}/canned?q=closing"))
        .await;
    assert!(texts(&closing)[0].ends_with("— Ana"), "{closing}");
    let (_, none) = ana
        .get(&format!(
            "/console/api/conversations/{id}/canned?q=zebra%20refund"
        ))
        .await;
    assert!(texts(&none).is_empty(), "{none}");

    let (status, body) = ana
        .get("/console/api/conversations/no-such-conversation/canned")
        .await;
    assert_eq!(status, 404, "{body}");
    s.shutdown().await;
}

#[tokio::test]
async fn what_the_conversation_cannot_tell_shows_as_a_placeholder() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    // Anonymous, no order named: no name, no order, no tracking link.
    let turn = s.say("assist-anonymous", "hello").await;
    let id = turn["conversation_id"].as_str().unwrap();
    let ana = s.login(ANA).await;
    let (status, found) = ana
        .get(&format!(
            "/console/api/conversations/{id}/canned?q=tracking"
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        texts(&found)[0],
        "Hi [customer name], your order [order number] is [order status]. You can follow the \
         parcel here: [tracking link]."
    );
    s.shutdown().await;
}

#[tokio::test]
async fn only_a_logged_in_agent_gets_canned_replies_and_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let id = emma_asks(&s).await;
    let canned = s.at(&format!(
        "/console/api/conversations/{id}/canned?q=tracking"
    ));
    let suggest = s.at(&format!("/console/api/conversations/{id}/suggest"));

    // No session at all.
    let res = s.http.get(&canned).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = s.http.post(&suggest).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // A customer's credentials: the REST channel's API key, a shop-signed customer token.
    let customer_token = s.server.keys.customer.sign(&emma());
    for bearer in [s.key.as_str(), customer_token.as_str(), "not-a-token"] {
        let res = s
            .http
            .get(&canned)
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "GET canned with {bearer}");
        let res = s
            .http
            .post(&suggest)
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "POST suggest with {bearer}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_suggestion_without_an_llm_says_how_to_configure_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let id = emma_asks(&s).await;
    let ana = s.login(ANA).await;
    let (status, body) = ana
        .post(&format!("/console/api/conversations/{id}/suggest"), None)
        .await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no LLM is configured") && message.contains("[llm] url"),
        "{message}"
    );
    // Without an LLM no summary is written, and nothing fails.
    let written = s
        .server
        .desk
        .write_llm_summary(&ConversationId(id.clone()))
        .await
        .unwrap();
    assert!(!written);
    let (_, c) = ana.get(&format!("/console/api/conversations/{id}")).await;
    assert!(c["llm_summary"].is_null(), "{c}");
    s.shutdown().await;
}

/// A fake OpenAI-compatible endpoint that answers by task (whatever order the calls come
/// in): summaries and drafts from their own scripts (summaries then `summary_after`),
/// anything else a hand-off answer. The user prompt of every call is kept.
#[derive(Clone, Default)]
struct FakeLlm {
    summaries: Arc<Mutex<VecDeque<String>>>,
    summary_after: Arc<Mutex<Option<String>>>,
    drafts: Arc<Mutex<VecDeque<String>>>,
    prompts: Arc<Mutex<Vec<String>>>,
}

impl FakeLlm {
    async fn start(&self) -> String {
        let app = Router::new()
            .route("/v1/chat/completions", post(fake_completion))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/v1")
    }

    fn summary(&self, text: &str) {
        self.summaries.lock().unwrap().push_back(text.into());
    }

    fn draft(&self, text: &str) {
        self.drafts.lock().unwrap().push_back(text.into());
    }

    fn prompts_with(&self, needle: &str) -> Vec<String> {
        let prompts = self.prompts.lock().unwrap();
        prompts
            .iter()
            .filter(|p| p.contains(needle))
            .cloned()
            .collect()
    }
}

async fn fake_completion(State(fake): State<FakeLlm>, Json(body): Json<Value>) -> Json<Value> {
    let user = body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    fake.prompts.lock().unwrap().push(user.clone());
    let scripted = if user.contains("Summarise this support conversation") {
        let next = fake.summaries.lock().unwrap().pop_front();
        next.or_else(|| fake.summary_after.lock().unwrap().clone())
    } else if user.contains("Draft the next reply of the human agent") {
        fake.drafts.lock().unwrap().pop_front()
    } else {
        None
    };
    let text = scripted.unwrap_or_else(|| {
        json!({"answer": "A colleague will help you.", "cited": [], "handoff": true}).to_string()
    });
    Json(json!({
        "id": "chatcmpl-assist", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}
    }))
}

async fn serve_with_llm(fake: &FakeLlm, dir: &std::path::Path) -> TestServer {
    let url = fake.start().await;
    let mut config = config(dir);
    config.llm.url = Some(url);
    config.llm.model = "fake-model".into();
    config.llm.timeout_ms = 3_000;
    config.llm.max_retries = 0;
    serve_with(config, KeywordNlu).await
}

#[tokio::test]
async fn a_suggested_reply_comes_from_the_llm_and_a_foreign_link_is_refused() {
    let fake = FakeLlm::default();
    let dir = tempfile::tempdir().unwrap();
    let s = serve_with_llm(&fake, dir.path()).await;
    let id = emma_asks(&s).await;
    let ana = s.login(ANA).await;
    let (_, found) = ana
        .get(&format!("/console/api/conversations/{id}/canned"))
        .await;
    assert_eq!(found["can_suggest"], true, "{found}");

    fake.draft(
        "Hi Emma, order 10001 is on its way with DHL: https://shop.example/track/JJD002553714997",
    );
    let (status, body) = ana
        .post(&format!("/console/api/conversations/{id}/suggest"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["text"],
        "Hi Emma, order 10001 is on its way with DHL: https://shop.example/track/JJD002553714997"
    );
    // The model was given the order and the customer's message, her email masked.
    let asked = fake.prompts_with("Draft the next reply");
    assert_eq!(asked.len(), 1);
    assert!(asked[0].contains("Order 10001"), "{}", asked[0]);
    assert!(
        asked[0].contains("[email 1]") && !asked[0].contains("emma.becker@example.com"),
        "{}",
        asked[0]
    );
    // Nothing was sent to the customer.
    let (_, c) = ana.get(&format!("/console/api/conversations/{id}")).await;
    assert!(
        !c["messages"].to_string().contains("on its way with DHL:"),
        "{c}"
    );

    fake.draft("Please log in at https://evil.example/login to see order 10001.");
    let (status, body) = ana
        .post(&format!("/console/api/conversations/{id}/suggest"), None)
        .await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("https://evil.example/login") && message.contains("allow-list"),
        "{message}"
    );

    fake.draft("Your order 99999 has shipped.");
    let (status, body) = ana
        .post(&format!("/console/api/conversations/{id}/suggest"), None)
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("99999"),
        "{body}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn the_llm_summary_is_kept_on_the_conversation_and_shown_to_agents() {
    let fake = FakeLlm::default();
    let dir = tempfile::tempdir().unwrap();
    let s = serve_with_llm(&fake, dir.path()).await;
    let mut events = s.server.desk.subscribe();
    // The first summary links outside the allow-list: it is not kept; every later one is.
    fake.summary("- Wants order 10001\n- See https://evil.example/");
    *fake.summary_after.lock().unwrap() = Some(
        "- Emma Becker asks where order 10001 is (DHL, on its way)\n- Reply to [email 1]\n- Wants a person"
            .into(),
    );
    let id = emma_asks(&s).await;
    let turn = s
        .say_as("assist-emma", &emma(), "it is late, I want a human agent")
        .await;
    assert_eq!(turn["status"], "queued", "{turn}");
    let conversation = ConversationId(id.clone());

    // The desk may already have asked at the escalation (then the bad one was spent there).
    let mut written = false;
    for _ in 0..3 {
        written = s
            .server
            .desk
            .write_llm_summary(&conversation)
            .await
            .unwrap();
        if written {
            break;
        }
    }
    assert!(written, "the second summary passes the guardrails");
    let asked = fake.prompts_with("Summarise this support conversation");
    assert!(
        asked.iter().all(|p| p.contains("I want a human agent")
            && p.contains("Order 10001")
            && !p.contains("emma.becker@example.com")),
        "{asked:?}"
    );

    let ana = s.login(ANA).await;
    let (status, c) = ana.get(&format!("/console/api/conversations/{id}")).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        c["llm_summary"],
        "- Emma Becker asks where order 10001 is (DHL, on its way)\n- Reply to \
         emma.becker@example.com\n- Wants a person",
        "{c}"
    );
    // The local summary is still there.
    assert!(c["summary"].is_object(), "{c}");

    // Open consoles hear about it.
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(e)
                    if e.conversation_id == conversation
                        && e.kind == DeskEventKind::SummaryWritten =>
                {
                    return true
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(heard, Ok(true));
    s.shutdown().await;
}
