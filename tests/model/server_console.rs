//! The agent console API and the widget socket against a real server: claim, live reply
//! to the customer's channel, hand back, close; access without a session refused; a
//! restart keeps queues, transcripts, sessions and visitor identities.

use crate::support::server::*;
use serde_json::json;

#[tokio::test]
async fn agent_claims_replies_hands_back_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let turn = s.say("u-cycle", "I want to talk to a human agent").await;
    assert_eq!(turn["status"], "queued", "{turn}");
    let id = turn["conversation_id"].as_str().unwrap().to_string();

    let ana = s.login(ANA).await;
    let ben = s.login(BEN).await;
    let claimed = ana.act(&id, "claim", None).await;
    assert_eq!(claimed["status"], "with_agent");
    assert_eq!(claimed["assigned_agent"], "ana");
    assert!(ana.queue("general").await["entries"]
        .as_array()
        .unwrap()
        .is_empty());
    let (_, me) = ana.get("/console/api/me").await;
    assert_eq!(me["conversations"], json!([id]));

    // Somebody else's conversation: no claim, no reply.
    let (status, body) = ben
        .post(&format!("/console/api/conversations/{id}/claim"), None)
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = ben
        .post(
            &format!("/console/api/conversations/{id}/reply"),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    let after_reply = ana
        .act(
            &id,
            "reply",
            Some(json!({"text": "Hi, this is Ana. How can I help?"})),
        )
        .await;
    let last = after_reply["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["from"], json!({"role": "agent", "name": "ana"}));

    // While the agent owns it the bot stays silent.
    let quiet = s.say("u-cycle", "my order 10001 has not arrived").await;
    assert_eq!(quiet["status"], "with_agent");
    assert_eq!(quiet["replies"], json!([]));

    // The transcript carries the NLU's reading of each customer message.
    let (_, transcript) = ana.get(&format!("/console/api/conversations/{id}")).await;
    let customer_messages: Vec<_> = transcript["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"]["role"] == "customer")
        .collect();
    assert_eq!(customer_messages.len(), 2);
    for m in &customer_messages {
        assert!(m["analysis"]["intent"].is_string(), "{m}");
        assert!(m["analysis"]["sentiment"].is_string(), "{m}");
    }
    assert_eq!(
        customer_messages[0]["analysis"]["intent"],
        "contact_human_agent"
    );

    let back = ana.act(&id, "hand_back", None).await;
    assert_eq!(back["status"], "bot");
    let answered = s.say("u-cycle", "where is my order 10001").await;
    assert_eq!(answered["status"], "bot");
    assert!(replies(&answered).contains("10001"), "{answered}");

    // Close: it is over, and the customer's next message opens a new conversation.
    s.say("u-cycle", "I want to talk to a human agent").await;
    ana.act(&id, "claim", None).await;
    let closed = ana.act(&id, "close", None).await;
    assert_eq!(closed["status"], "closed");
    let (status, _) = ana
        .post(
            &format!("/console/api/conversations/{id}/reply"),
            Some(json!({"text": "x"})),
        )
        .await;
    assert!(status == 403 || status == 409, "{status}");
    let next = s.say("u-cycle", "hello again").await;
    assert_ne!(next["conversation_id"], id.as_str());
    s.shutdown().await;
}

#[tokio::test]
async fn widget_socket_gets_the_agents_reply_live_and_resumes_after_reload() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let mut widget = Widget::connect(&s, None, None).await;
    let token = widget.token();
    assert!(widget.welcome["history"].as_array().unwrap().is_empty());

    widget.send("I want to talk to a human agent").await;
    let turn = widget.next_of("turn").await;
    assert_eq!(turn["status"], "queued", "{turn}");
    let id = turn["conversation_id"].as_str().unwrap().to_string();

    let ana = s.login(ANA).await;
    ana.act(&id, "claim", None).await;
    assert_eq!(widget.next_of("status").await["status"], "with_agent");
    ana.act(
        &id,
        "reply",
        Some(json!({"text": "Hello from Ana, I am looking at it."})),
    )
    .await;
    let live = widget.next_of("agent").await;
    assert_eq!(live["agent"], "Ana");
    assert_eq!(live["text"], "Hello from Ana, I am looking at it.");

    // A reload: the same stored token resumes the conversation with its history.
    drop(widget);
    let again = Widget::connect(&s, Some(&token), None).await;
    assert_eq!(again.welcome["conversation_id"], id.as_str());
    assert_eq!(again.welcome["status"], "with_agent");
    let history = again.welcome["history"].as_array().unwrap();
    assert_eq!(
        history.first().unwrap()["text"],
        "I want to talk to a human agent"
    );
    let last = history.last().unwrap();
    assert_eq!(
        (last["from"].as_str(), last["agent"].as_str()),
        (Some("agent"), Some("Ana"))
    );

    // A tampered token is not accepted: the visitor gets a new identity, not someone else's.
    let tampered = format!("{}x", token);
    let stranger = Widget::connect(&s, Some(&tampered), None).await;
    assert!(stranger.welcome["conversation_id"].is_null());
    assert_ne!(stranger.welcome["user"], again.welcome["user"]);
    s.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_queues_transcripts_sessions_and_visitors() {
    let dir = tempfile::tempdir().unwrap();
    let (queued_id, owned_id, agent_token, visitor_token) = {
        let s = serve(dir.path()).await;
        let queued = s.say("r-1", "I want to talk to a human agent").await;
        let owned = s.say("r-2", "I want to talk to a human agent").await;
        let owned_id = owned["conversation_id"].as_str().unwrap().to_string();
        let ana = s.login(ANA).await;
        ana.act(&owned_id, "claim", None).await;
        ana.act(
            &owned_id,
            "reply",
            Some(json!({"text": "Ana here, before the restart."})),
        )
        .await;
        let mut widget = Widget::connect(&s, None, None).await;
        widget.send("where is my order 10001").await;
        widget.next_of("turn").await;
        let result = (
            queued["conversation_id"].as_str().unwrap().to_string(),
            owned_id,
            ana.token.clone(),
            widget.token(),
        );
        drop(widget);
        s.shutdown().await;
        result
    };

    let s = serve(dir.path()).await;
    // The agent's session survives (the secret is kept in the data dir).
    let ana = Agent::resume(&s, agent_token).await;
    let general = ana.queue("general").await;
    assert_eq!(
        general["entries"][0]["conversation_id"],
        queued_id.as_str(),
        "{general}"
    );
    let (status, owned) = ana
        .get(&format!("/console/api/conversations/{owned_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(owned["status"], "with_agent");
    assert_eq!(owned["assigned_agent"], "ana");
    assert!(owned["messages"]
        .to_string()
        .contains("Ana here, before the restart."));
    let (_, me) = ana.get("/console/api/me").await;
    assert_eq!(me["conversations"], json!([owned_id]));

    // The visitor's token still opens their conversation with its history.
    let widget = Widget::connect(&s, Some(&visitor_token), None).await;
    let history = widget.welcome["history"].as_array().unwrap();
    assert_eq!(history[0]["text"], "where is my order 10001");
    assert!(history.len() >= 2, "{history:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn waiting_visitor_sees_their_queue_position_move_up_live() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let first = s.say("ahead-1", "I want to talk to a human agent").await;
    let mut widget = Widget::connect(&s, None, None).await;
    widget.send("I want to talk to a human agent").await;
    let turn = widget.next_of("turn").await;
    assert_eq!(
        turn["queue"],
        json!({"name": "general", "position": 2}),
        "{turn}"
    );

    // The customer ahead is taken by an agent: the visitor moves to the front.
    let ana = s.login(ANA).await;
    ana.act(first["conversation_id"].as_str().unwrap(), "claim", None)
        .await;
    let update = widget.next_of("queue").await;
    assert_eq!(update["queue"], "general");
    assert_eq!(update["position"], 1);
    s.shutdown().await;
}
