//! Auto-assignment: waiting customers go by themselves to the available agent who serves
//! their queue and has the most room, in turn among equals, never past capacity; an agent
//! going away (the toggle, a logout) hands their chats back at their place; claiming by
//! hand still works. On the desk, and through the console's API.

use crate::support::desk::{say, TestDesk};
use crate::support::eventually;
use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, serve_keyword, serve_with, ANA};
use frontdesk::config::AgentConfig;
use frontdesk::desk::Desk;
use frontdesk::message::{ConversationId, Speaker, Status};
use frontdesk::store::{MilestoneKind, Store};
use serde_json::json;

fn agent(name: &str, capacity: usize, queues: &[&str]) -> AgentConfig {
    AgentConfig {
        name: name.into(),
        display_name: Some(name.to_uppercase()),
        password_hash: "$argon2id$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        capacity,
        role: "agent".into(),
        queues: queues.iter().map(|q| q.to_string()).collect(),
    }
}

async fn owner(desk: &Desk, id: &ConversationId) -> Option<String> {
    let c = desk.conversation(id).await.unwrap().unwrap();
    match c.status {
        Status::WithAgent => c.assigned_agent,
        _ => None,
    }
}

async fn status(desk: &Desk, id: &ConversationId) -> Status {
    desk.conversation(id).await.unwrap().unwrap().status
}

async fn active(desk: &Desk, name: &str) -> usize {
    desk.agents()
        .await
        .into_iter()
        .find(|a| a.name == name)
        .unwrap()
        .active
}

/// The milestones of `id` as the store keeps them.
async fn timeline(store: &dyn Store, id: &ConversationId) -> Vec<MilestoneKind> {
    let r = store.conversation(id).await.unwrap().unwrap();
    r.timeline.into_iter().map(|m| m.kind).collect()
}

async fn escalate(desk: &Desk, user: &str) -> ConversationId {
    let turn = say(desk, user, "I want to talk to a human").await;
    assert_eq!(turn.status, Status::Queued, "{user} asked for a person");
    turn.conversation_id
}

#[tokio::test]
async fn three_agents_of_different_capacity_share_the_queue_by_room_then_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    // a, b and c serve the general queue (a: every queue); d serves only care; e stays away.
    let (desk, store) = TestDesk::new()
        .agents(vec![
            agent("a", 1, &[]),
            agent("b", 2, &["general"]),
            agent("c", 3, &["general", "care"]),
            agent("d", 5, &["care"]),
            agent("e", 2, &[]),
        ])
        .open_with_store(dir.path());
    for name in ["a", "b", "c", "d"] {
        let now = desk.set_availability(name, true, None).await.unwrap();
        assert!(now.available && now.auto_assign);
    }
    assert!(
        !desk.availability("e").await.unwrap().available,
        "agents start away"
    );

    // Six customers: most room first (c 3, then b and c tie at 2...), in turn among equals.
    let mut ids = Vec::new();
    let mut owners = Vec::new();
    for i in 0..6 {
        let id = escalate(&desk, &format!("cust{i}")).await;
        owners.push(owner(&desk, &id).await.unwrap_or_default());
        ids.push(id);
    }
    assert_eq!(owners, ["c", "b", "c", "a", "b", "c"]);
    for (name, n) in [("a", 1), ("b", 2), ("c", 3), ("d", 0), ("e", 0)] {
        assert_eq!(active(&desk, name).await, n, "{name}'s conversations");
    }
    // The customer sees the agent join, as after a claim; the timeline says it was given.
    let first = desk.conversation(&ids[0]).await.unwrap().unwrap();
    assert!(
        first
            .messages
            .iter()
            .any(|m| m.from == Speaker::Bot && m.text.contains("C from our team has joined")),
        "{:?}",
        first.messages
    );
    assert!(timeline(store.as_ref(), &ids[0])
        .await
        .contains(&MilestoneKind::Claimed {
            agent: "c".into(),
            auto: true
        }));

    // Everyone serving the queue is full: the seventh waits.
    let seventh = escalate(&desk, "cust6").await;
    assert_eq!(status(&desk, &seventh).await, Status::Queued);
    // Claiming by hand still works (e is away, and may still claim).
    let claimed = desk.claim("e", &seventh).await.unwrap();
    assert_eq!(claimed.assigned_agent.as_deref(), Some("e"));
    assert!(timeline(store.as_ref(), &seventh)
        .await
        .contains(&MilestoneKind::Claimed {
            agent: "e".into(),
            auto: false
        }));

    // A close frees one of b's places: the customer waiting gets b at once.
    let eighth = escalate(&desk, "cust7").await;
    assert_eq!(status(&desk, &eighth).await, Status::Queued);
    desk.close("b", &ids[1]).await.unwrap();
    assert_eq!(owner(&desk, &eighth).await.as_deref(), Some("b"));

    // c goes away: c's three chats go back to the queue ahead of the one waiting since.
    let ninth = escalate(&desk, "cust8").await;
    let away = desk.set_availability("c", false, None).await.unwrap();
    assert!(!away.available);
    let mut handed: Vec<_> = away.handed_back.clone();
    handed.sort();
    let mut cs = vec![ids[0].clone(), ids[2].clone(), ids[5].clone()];
    cs.sort();
    assert_eq!(handed, cs);
    assert_eq!(active(&desk, "c").await, 0);
    for id in &cs {
        assert_eq!(status(&desk, id).await, Status::Queued);
        assert!(timeline(store.as_ref(), id)
            .await
            .contains(&MilestoneKind::Requeued { agent: "c".into() }));
    }
    let slot = desk
        .queue_slot(&desk.conversation(&ninth).await.unwrap().unwrap())
        .await
        .unwrap();
    assert_eq!(
        slot.position, 4,
        "c's chats kept their place ahead of the ninth"
    );
    // e becomes available with room for one: e gets the longest waiting, c's first chat.
    desk.set_availability("e", true, None).await.unwrap();
    assert_eq!(owner(&desk, &ids[0]).await.as_deref(), Some("e"));
    assert_eq!(status(&desk, &ninth).await, Status::Queued);
    assert_eq!(active(&desk, "e").await, 2);
    // d, serving only care, never got a general conversation.
    assert_eq!(active(&desk, "d").await, 0);
    assert!(desk.availability("d").await.unwrap().available);
}

#[tokio::test]
async fn without_auto_assignment_waiting_customers_wait_for_a_claim() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.engine.auto_assign = false;
    let s = serve_with(cfg, KeywordNlu).await;
    let ana = s.login(ANA).await;
    let (code, now) = ana
        .post(
            "/console/api/me/availability",
            Some(json!({"available": true})),
        )
        .await;
    assert_eq!(code, 200, "{now}");
    assert_eq!(
        (now["available"].clone(), now["auto_assign"].clone()),
        (json!(true), json!(false))
    );
    let turn = s.say("w1", "I want to talk to a human").await;
    let id = turn["conversation_id"].as_str().unwrap().to_string();
    s.server.desk.check_availability().await.unwrap();
    let (_, c) = ana.get(&format!("/console/api/conversations/{id}")).await;
    assert_eq!(c["status"], "queued", "nobody is given it: {c}");
    let claimed = ana.act(&id, "claim", None).await;
    assert_eq!(claimed["assigned_agent"], "ana");
    s.shutdown().await;
}

#[tokio::test]
async fn the_console_toggle_gives_an_agent_chats_and_a_logout_hands_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let ana = s.login(ANA).await;
    let (code, me) = ana.get("/console/api/me/availability").await;
    assert_eq!(code, 200, "{me}");
    assert_eq!(
        (me["available"].clone(), me["auto_assign"].clone()),
        (json!(false), json!(true))
    );

    // Nobody is available: the customer waits.
    let waiting = s.say("web-1", "I want to talk to a human").await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    let first = waiting["conversation_id"].as_str().unwrap().to_string();

    // The toggle needs the session's CSRF token, like every console action.
    let res = s
        .http
        .post(s.at("/console/api/me/availability"))
        .bearer_auth(&ana.token)
        .json(&json!({"available": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let (code, _) = s
        .http
        .post(s.at("/console/api/me/availability"))
        .json(&json!({"available": true}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(code, 401, "no session, no toggle");

    let (code, now) = ana
        .post(
            "/console/api/me/availability",
            Some(json!({"available": true})),
        )
        .await;
    assert_eq!(code, 200, "{now}");
    assert_eq!(now["available"], true);
    // Available: the waiting customer is Ana's at once, and the next one too.
    let (_, me) = ana.get("/console/api/me").await;
    assert_eq!(me["conversations"], json!([first]), "{me}");
    let next = s.say("web-2", "agent please").await;
    let second = next["conversation_id"].as_str().unwrap().to_string();
    let (_, me) = ana.get("/console/api/me").await;
    assert_eq!(me["active"], 2, "{me}");
    let (_, c) = ana
        .get(&format!("/console/api/conversations/{second}"))
        .await;
    assert_eq!(c["assigned_agent"], "ana", "{c}");

    // A bad body is refused with what to send.
    let (code, body) = ana
        .post(
            "/console/api/me/availability",
            Some(json!({"available": "yes"})),
        )
        .await;
    assert_eq!(code, 400, "{body}");

    // Logging out makes Ana away: her chats go back to the queue within seconds.
    let (code, _) = ana.post("/console/api/logout", None).await;
    assert_eq!(code, 204);
    let ana_again = s.login(ANA).await;
    eventually("ana's chats back in the queue after her logout", || async {
        let (_, me) = ana_again.get("/console/api/me").await;
        (me["active"] == 0).then_some(())
    })
    .await;
    let (_, c) = ana_again
        .get(&format!("/console/api/conversations/{first}"))
        .await;
    assert_eq!(c["status"], "queued", "{c}");
    let (_, me) = ana_again.get("/console/api/me/availability").await;
    assert_eq!(me["available"], false, "a new session starts away: {me}");
    s.shutdown().await;
}
