//! Safe in front of real customers: each test is an attack on a default server, which must
//! fail — REST without a key, one integration reading another's conversations, forged or
//! endless customer tokens, a session signed with another purpose's key, a session used
//! after logout, cross-site console sockets and calls, password guessing, link-code
//! guessing, an erased customer still findable, conversations stranded by a removed agent,
//! and the demo's token minting on a real deployment.

use crate::support::server::*;
use base64::Engine as _;
use frontdesk::server::auth::{Keys, Scope, SessionClaims};
use futures::StreamExt;
use serde_json::{json, Value};

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn rest_without_a_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let body = json!({"user_id": "victim", "text": "I want a refund"});
    let (status, reply) = s.post_message_with(None, body.clone()).await;
    assert_eq!(status, 401, "{reply}");
    assert!(
        message(&reply).contains("frontdesk api-key create"),
        "{reply}"
    );
    let (status, reply) = s
        .post_message_with(Some("fd_guessed_0000000000"), body.clone())
        .await;
    assert_eq!(status, 401, "{reply}");
    // A key for reading queues cannot write as a customer.
    let agent_key = s.api_key(Scope::Agent).await;
    let (status, _) = s.post_message_with(Some(&agent_key), body.clone()).await;
    assert_eq!(status, 403);
    // A revoked key stops working.
    let key = s.api_key(Scope::Messages).await;
    let (status, _) = s.post_message_with(Some(&key), body.clone()).await;
    assert_eq!(status, 200);
    let id = key.split('_').nth(1).unwrap();
    frontdesk::server::auth::revoke_api_key(s.server.store.as_ref(), id)
        .await
        .unwrap();
    let (status, _) = s.post_message_with(Some(&key), body).await;
    assert_eq!(status, 401);
    s.shutdown().await;
}

#[tokio::test]
async fn one_key_cannot_read_or_write_another_keys_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let (a, b) = (
        s.api_key(Scope::Messages).await,
        s.api_key(Scope::Messages).await,
    );
    let say = |key: String, text: &'static str| {
        let s = &s;
        async move {
            let (status, turn) = s
                .post_message_with(Some(&key), json!({"user_id": "C1", "text": text}))
                .await;
            assert_eq!(status, 200, "{turn}");
            turn["conversation_id"].as_str().unwrap().to_string()
        }
    };
    let mine = say(a.clone(), "where is my order 10001").await;
    // Integration B uses the same user id: it gets a customer of its own.
    let theirs = say(b.clone(), "I want to talk to a human agent").await;
    assert_ne!(mine, theirs);

    let (status, view) = s
        .get_with(&a, &format!("/api/v1/conversations/{mine}"))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["user_id"], "C1");
    assert_eq!(view["messages"][0]["direction"], "in");
    assert_eq!(view["messages"][0]["text"], "where is my order 10001");
    assert_eq!(view["messages"][1]["direction"], "out");
    assert!(view.get("sentiment_trajectory").is_none(), "{view}");

    let (status, _) = s
        .get_with(&b, &format!("/api/v1/conversations/{mine}"))
        .await;
    assert_eq!(status, 404);
    let (status, view) = s
        .get_with(&b, &format!("/api/v1/conversations/{theirs}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(view["queue"]["name"], "general", "{view}");
    // A messages key does not read the queues; an agent key reads everything.
    let (status, _) = s.get_with(&a, "/api/v1/queues").await;
    assert_eq!(status, 403);
    let lead = s.api_key(Scope::Lead).await;
    let (status, queues) = s.get_with(&lead, "/api/v1/queues").await;
    assert_eq!(status, 200, "{queues}");
    let (status, full) = s
        .get_with(&lead, &format!("/api/v1/conversations/{mine}"))
        .await;
    assert_eq!(status, 200);
    assert!(full["sentiment_trajectory"].is_array(), "{full}");
    s.shutdown().await;
}

#[tokio::test]
async fn expired_endless_or_exp_less_customer_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let now = chrono::Utc::now().timestamp();
    for exp in [None, Some(now - 10), Some(now + 10 * 86_400)] {
        let mut claims = customer("C1004", Some("vip"), Some(20_000.0));
        claims.exp = exp;
        let token = s.server.keys.customer.sign(&claims);
        let (status, body) = s
            .post_message(json!({"user_id": "t", "text": "hi", "customer_token": token}))
            .await;
        assert_eq!(status, 401, "exp {exp:?}: {body}");
        assert!(message(&body).contains("exp"), "{body}");
    }
    // A token signed with the widget's key is no customer token either.
    let token = s
        .server
        .keys
        .widget
        .sign(&customer("C1004", Some("vip"), None));
    let (status, _) = s
        .post_message(json!({"user_id": "t", "text": "hi", "customer_token": token}))
        .await;
    assert_eq!(status, 401);
    s.shutdown().await;
}

/// The claims inside a token (no check).
fn claims_of(token: &str) -> SessionClaims {
    let payload = token.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[tokio::test]
async fn a_session_signed_with_another_purposes_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let ana = s.login(ANA).await;
    let (status, _) = ana.get("/console/api/me").await;
    assert_eq!(status, 200);
    // Whoever holds the key for widget or customer tokens (a shop) re-signs a real session.
    let secret = std::fs::read_to_string(dir.path().join("secret")).unwrap();
    let keys = Keys::derive(secret.trim(), None);
    let claims = claims_of(&ana.token);
    for forged in [keys.widget.sign(&claims), keys.customer.sign(&claims)] {
        let res = s
            .http
            .get(s.at("/console/api/me"))
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    // The master secret itself signs nothing either.
    let raw = frontdesk::server::auth::Signer::new(secret.trim()).sign(&claims);
    let res = s
        .http
        .get(s.at("/api/v1/queues"))
        .bearer_auth(&raw)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    s.shutdown().await;
}

#[tokio::test]
async fn logout_revokes_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let ana = s.login(ANA).await;
    assert_eq!(ana.get("/console/api/me").await.0, 200);
    let (status, _) = ana.post("/console/api/logout", None).await;
    assert_eq!(status, 204);
    // The token (kept by an attacker, or a stolen cookie) no longer works.
    assert_eq!(ana.get("/console/api/me").await.0, 401);
    assert_eq!(ana.get("/api/v1/queues").await.0, 401);
    s.shutdown().await;
}

#[tokio::test]
async fn console_socket_from_a_foreign_origin_is_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let ana = s.login(ANA).await;
    let url = format!("ws://{}/console/ws", s.server.addr);
    let connect = |origin: Option<String>, cookie: bool| {
        let mut req = url.clone().into_client_request().unwrap();
        let auth = if cookie {
            ("cookie", format!("frontdesk_session={}", ana.token))
        } else {
            ("authorization", format!("Bearer {}", ana.token))
        };
        req.headers_mut().insert(auth.0, auth.1.parse().unwrap());
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    let evil = Some("http://evil.example".to_string());
    assert!(
        connect(evil.clone(), true).await.is_err(),
        "foreign origin, cookie"
    );
    assert!(
        connect(evil, false).await.is_err(),
        "foreign origin, bearer"
    );
    assert!(connect(None, true).await.is_err(), "cookie without origin");
    let own = Some(format!("http://{}", s.server.addr));
    let (mut ws, _) = connect(own, true).await.expect("same origin connects");
    // It works: an event arrives when a customer is queued.
    s.say("ws-1", "I want to talk to a human agent").await;
    let frame = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
        .await
        .expect("an event")
        .expect("open")
        .expect("frame");
    assert!(frame.to_text().unwrap().contains("conversation_id"));
    s.shutdown().await;
}

#[tokio::test]
async fn cross_site_console_posts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let id = s.say("csrf-1", "I want to talk to a human agent").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ana = s.login(ANA).await;
    let claim = s.at(&format!("/console/api/conversations/{id}/claim"));
    let cookie = format!("frontdesk_session={}", ana.token);
    let own = format!("http://{}", s.server.addr);
    let post = |origin: &str, csrf: Option<&str>| {
        let mut req = s
            .http
            .post(&claim)
            .header("cookie", &cookie)
            .header("origin", origin);
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // A page on another site posts with the agent's cookie: no CSRF token.
    assert_eq!(post("http://evil.example", None).await, 403);
    // Even with the token (leaked), a foreign Origin is refused.
    assert_eq!(post("http://evil.example", Some(&ana.csrf)).await, 403);
    assert_eq!(post(&own, Some("wrong")).await, 403);
    assert_eq!(post(&own, None).await, 403);
    // Still waiting; the real console (same origin, token) can claim.
    assert_eq!(
        ana.queue("general").await["entries"][0]["conversation_id"],
        id.as_str()
    );
    assert_eq!(post(&own, Some(&ana.csrf)).await, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn password_guessing_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    for i in 0..5 {
        let (status, _) = s.try_login(("ana", &format!("guess-{i}"))).await;
        assert_eq!(status, 401);
    }
    // Locked: even the right password is refused now, without hashing anything.
    let (status, body) = s.try_login(ANA).await;
    assert_eq!(status, 429, "{body}");
    assert!(message(&body).contains("too many failed logins"), "{body}");
    // Another agent is not locked by ana's guesser.
    let (status, _) = s.try_login(BEN).await;
    assert_eq!(status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn secure_cookie_behind_https() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.server.public_url = Some("https://support.example.com".into());
    let s = serve_with(c, crate::support::nlu::KeywordNlu).await;
    let res = s
        .http
        .post(s.at("/console/api/login"))
        .json(&json!({"name": ANA.0, "password": ANA.1}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // The console's origin is the public one now.
    let res = s
        .http
        .post(s.at("/console/api/login"))
        .header("origin", format!("http://{}", s.server.addr))
        .json(&json!({"name": ANA.0, "password": ANA.1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    s.shutdown().await;
}

fn replies_of(turn: &Value) -> String {
    replies(turn)
}

#[tokio::test]
async fn link_code_guessing_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    // The victim asks for a code on another integration.
    let victim_key = s.api_key(Scope::Messages).await;
    s.post_message_with(
        Some(&victim_key),
        json!({"user_id": "victim", "text": "hello"}),
    )
    .await;
    let (_, turn) = s
        .post_message_with(
            Some(&victim_key),
            json!({"user_id": "victim", "text": "/link"}),
        )
        .await;
    let code = crate::support::scenarios::link_code(&replies_of(&turn));
    // The guesser tries codes; after five wrong ones, even the right one is refused.
    s.say("guesser", "hello").await;
    for _ in 0..5 {
        let wrong = frontdesk::desk::new_code();
        let turn = s.say("guesser", &format!("/link {wrong}")).await;
        assert!(replies_of(&turn).contains("unknown"), "{turn}");
    }
    let turn = s.say("guesser", &format!("/link {code}")).await;
    assert!(replies_of(&turn).contains("too many wrong codes"), "{turn}");
    // The victim's code was not used up by the locked guesser: their other app links.
    let turn = s.say("victim-phone", &format!("/link {code}")).await;
    assert!(!replies_of(&turn).contains("unknown"), "{turn}");
    s.shutdown().await;
}

#[tokio::test]
async fn an_erased_customer_leaves_nothing_findable() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let secret_text = "my address is 12 Elm Street";
    s.say("erase-me", secret_text).await;
    let id = s.say("erase-me", "I want to talk to a human agent").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.say("erase-me", "/link").await;
    let ana = s.login(ANA).await;
    let conversation = ana.act(&id, "claim", None).await;
    let customer = conversation["customer"].as_str().unwrap().to_string();
    s.say("someone-else", "where is my order 10001").await;

    // Only an admin may export or erase.
    let path = format!("/api/v1/customers/{customer}");
    assert_eq!(
        s.get_with(&s.api_key(Scope::Lead).await, &path).await.0,
        403
    );
    assert_eq!(ana.get(&path).await.0, 403);
    let admin = s.api_key(Scope::Admin).await;
    let (status, export) = s.get_with(&admin, &path).await;
    assert_eq!(status, 200, "{export}");
    assert!(export.to_string().contains(secret_text), "{export}");

    let res = s
        .http
        .delete(s.at(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let dump = crate::support::server::dump(s.server.store.as_ref()).await;
    for needle in [customer.as_str(), id.as_str(), "erase-me", "Elm Street"] {
        let found: Vec<_> = dump
            .iter()
            .filter(|(_, k, v)| k.contains(needle) || v.contains(needle))
            .collect();
        assert!(found.is_empty(), "{needle} still in {found:?}");
    }
    // The audit says what happened, with a hash in place of the id.
    let audit = s.server.store.audit_lines().await.unwrap();
    assert_eq!(audit.last().unwrap().action, "erase");
    assert_eq!(
        audit.last().unwrap().subject,
        frontdesk::server::privacy::subject_hash(&customer)
    );
    // The others are untouched; the queue and ana's list hold nothing of the erased.
    assert!(dump.iter().any(|(_, k, _)| k.contains("someone-else")));
    let (_, me) = ana.get("/console/api/me").await;
    assert_eq!(me["conversations"], json!([]), "{me}");
    assert_eq!(s.get_with(&admin, &path).await.0, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn a_removed_agents_conversations_go_back_to_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (id, ben_token, ana_token) = {
        let s = serve_keyword(dir.path()).await;
        let id = s.say("orphan-1", "I want to talk to a human agent").await["conversation_id"]
            .as_str()
            .unwrap()
            .to_string();
        let ben = s.login(BEN).await;
        ben.act(&id, "claim", None).await;
        let ana = s.login(ANA).await;
        let tokens = (ben.token.clone(), ana.token.clone());
        s.shutdown().await;
        (id, tokens.0, tokens.1)
    };
    // Ben leaves the team; ana's password is changed.
    let mut c = config(dir.path());
    c.agents.retain(|a| a.name != "ben");
    c.agents[0].password_hash = frontdesk::server::auth::hash_password("ana-new-password").unwrap();
    let s = serve_with(c, crate::support::nlu::KeywordNlu).await;
    let ana = s.login(("ana", "ana-new-password")).await;
    let general = ana.queue("general").await;
    assert_eq!(
        general["entries"][0]["conversation_id"],
        id.as_str(),
        "{general}"
    );
    let (_, conversation) = ana.get(&format!("/console/api/conversations/{id}")).await;
    assert_eq!(conversation["status"], "queued");
    ana.act(&id, "claim", None).await;
    // Both old sessions are gone: ben's (removed) and ana's (password changed).
    for token in [ben_token, ana_token] {
        let res = s
            .http
            .get(s.at("/api/v1/queues"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn the_demo_signs_customers_only_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let page = |s: &TestServer| {
        let req = s.http.get(s.at("/?customer=C1004"));
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let text = page(&s).await;
    assert!(!text.contains("data-customer-token"), "{text}");
    assert!(!text.contains("?customer="), "{text}");
    // The Host header is written into the page escaped (or not at all).
    let res = s
        .http
        .get(s.at("/"))
        .header("host", "x\"><script>alert(1)</script>")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!res.contains("alert(1)"), "{res}");
    s.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.demo.enabled = true;
    let s = serve_with(c, crate::support::nlu::KeywordNlu).await;
    let text = page(&s).await;
    assert!(text.contains("data-customer-token"), "{text}");
    s.shutdown().await;
}

#[tokio::test]
async fn blocking_and_unblocking_a_customer_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let turn = s.say("troll", "agent please").await;
    let id = turn["conversation_id"].as_str().unwrap();
    let ana = s.login(ANA).await;
    let blocked = ana
        .act(id, "block", Some(json!({"reason": "insults"})))
        .await;
    let customer = blocked["customer"].as_str().unwrap().to_string();
    let (status, _) = ana
        .post(&format!("/console/api/customers/{customer}/unblock"), None)
        .await;
    assert_eq!(status, 200);
    let audit = s.server.store.audit_lines().await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(actions, ["block by agent ana", "unblock by agent ana"]);
    let hash = frontdesk::server::privacy::subject_hash(&customer);
    assert!(audit.iter().all(|l| l.subject == hash));
}
