//! An agent working the queues through the console API while the server is being killed:
//! claims the first waiting conversation, answers it and closes it, so that queue entries
//! come and go (and agent replies travel the outbox) under the kills. A call cut by a kill
//! is not repeated: the agent looks at the queues again instead.

use rand::rngs::StdRng;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use crate::customers::Ctx;
use crate::plan;

/// The agent of the campaign's config, with a password made for the campaign.
pub const NAME: &str = "ana";
pub const DISPLAY_NAME: &str = "Ana";
pub const PASSWORD: &str = "fault-campaign-agent-password";

/// The campaign config's `[[agents]]` entry (the hash made now: none is published).
pub fn config() -> String {
    // One hash for every node: a session is good on every node whose config holds the same
    // password hash (the same `[[agents]]` everywhere, as the README says).
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| {
        frontdesk::server::auth::hash_password(PASSWORD).expect("hash the password")
    });
    format!(
        "[[agents]]\nname = \"{NAME}\"\ndisplay_name = \"{DISPLAY_NAME}\"\n\
         password_hash = \"{hash}\"\ncapacity = 3\n"
    )
}

/// What the agent got done (answered 2xx).
#[derive(Debug, Default, Clone, Copy)]
pub struct Work {
    pub claims: usize,
    pub replies: usize,
    pub closes: usize,
    /// Calls that failed (a kill, a conversation taken from under it...).
    pub failed: usize,
}

struct Session {
    token: String,
    csrf: String,
}

pub async fn work(ctx: Arc<Ctx>) -> Work {
    let mut rng: StdRng = plan::rng(ctx.seed, 9_999);
    let mut work = Work::default();
    let mut session: Option<Session> = None;
    for k in 0.. {
        if ctx.stopped() {
            break;
        }
        tokio::time::sleep(plan::pause(&mut rng, 300..900)).await;
        if session.is_none() {
            session = login(&ctx).await;
        }
        let Some(s) = &session else { continue };
        let Some(queues) = call(&ctx, s, "GET", "/console/api/queues", None).await else {
            // An expired session (not yet on disk before a kill) or no server: log in again.
            session = None;
            work.failed += 1;
            continue;
        };
        let Some(id) = first_waiting(&queues) else {
            continue;
        };
        let path = |action: &str| format!("/console/api/conversations/{id}/{action}");
        let text = format!("Sorry for the wait, I am on it now (agent note {k}).");
        for (action, body, done) in [
            ("claim", None, &mut work.claims),
            ("reply", Some(json!({"text": text})), &mut work.replies),
            ("close", None, &mut work.closes),
        ] {
            match call(&ctx, s, "POST", &path(action), body).await {
                Some(_) => *done += 1,
                None => {
                    work.failed += 1;
                    break;
                }
            }
        }
    }
    work
}

async fn login(ctx: &Ctx) -> Option<Session> {
    let res = ctx
        .http
        .post(format!("{}/console/api/login", ctx.next_url()))
        .json(&json!({"name": NAME, "password": PASSWORD}))
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    let body: Value = res.json().await.ok()?;
    Some(Session {
        token: body["token"].as_str()?.to_string(),
        csrf: body["csrf"].as_str()?.to_string(),
    })
}

/// One console call; its JSON answer when it succeeded.
async fn call(
    ctx: &Ctx,
    session: &Session,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Option<Value> {
    // Each call to the next node: a session made by one is good on all.
    let url = format!("{}{path}", ctx.next_url());
    let mut req = match method {
        "GET" => ctx.http.get(url),
        _ => ctx.http.post(url).header("x-csrf-token", &session.csrf),
    }
    .bearer_auth(&session.token)
    .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.ok()?;
    if !res.status().is_success() {
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        ctx.note(format!(
            "console: {method} {} answered {status} {}",
            path.split('/').take(4).collect::<Vec<_>>().join("/"),
            body.chars().take(120).collect::<String>()
        ));
        return None;
    }
    res.json().await.ok()
}

/// The conversation at the head of the first queue (by name) that has one waiting.
fn first_waiting(queues: &Value) -> Option<String> {
    let mut queues: Vec<&Value> = queues.as_array()?.iter().collect();
    queues.sort_by_key(|q| q["name"].as_str().unwrap_or_default().to_string());
    queues.iter().find_map(|q| {
        q["entries"].as_array()?.first()?["conversation_id"]
            .as_str()
            .map(str::to_string)
    })
}
