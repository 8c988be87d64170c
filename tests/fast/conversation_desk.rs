//! The conversation engine end to end on a real sled store: what a customer and an agent
//! notice. The NLU reads keywords here (support::nlu) so each story controls what was
//! "understood"; tests/model/conversation_nlu.rs runs the same desk on the real model.

use crate::support::desk::*;
use frontdesk::desk::{DeskError, DeskEventKind};
use frontdesk::message::{ChannelKind, Speaker, Status};

#[tokio::test]
async fn routine_question_is_answered_by_the_bot() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    // 10001 is C1001's, whom the shop vouches for (ownership: tests/fast/ownership.rs).
    let turn = say_verified(&desk, "u1", "where is my order 10001", "C1001").await;
    assert_eq!(turn.status, Status::Bot);
    assert!(turn.queue.is_none());
    let text = reply(&turn);
    assert!(
        text.contains("10001") && text.contains("on its way"),
        "{text}"
    );
    assert!(
        text.contains("DHL") && text.contains("JJD002553714997"),
        "{text}"
    );
}

#[tokio::test]
async fn track_order_asks_for_the_number_then_answers_with_the_real_state() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    // 10007 is C1039's.
    let ask = say_verified(&desk, "u2", "where is my package", "C1039").await;
    assert!(reply(&ask).contains("order number"), "{}", reply(&ask));
    let answer = say_verified(&desk, "u2", "10007", "C1039").await;
    let text = reply(&answer);
    assert!(text.contains("Order 10007 is delayed"), "{text}");
    // The number is remembered: a later refund question needs no new prompt.
    let refund = say_verified(&desk, "u2", "what is the refund status", "C1039").await;
    assert!(reply(&refund).contains("10007"), "{}", reply(&refund));
    let conversation = desk
        .conversation(&answer.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conversation.slots.get("order_number").map(String::as_str),
        Some("10007")
    );
}

#[tokio::test]
async fn unknown_order_number_is_said_and_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    // 10005 is C1013's.
    let turn = say_verified(&desk, "u3", "track order 99999", "C1013").await;
    assert!(
        reply(&turn).contains("couldn't find an order"),
        "{}",
        reply(&turn)
    );
    let turn = say_verified(&desk, "u3", "sorry, it is 10005", "C1013").await;
    assert!(
        reply(&turn).contains("Order 10005 is delivered"),
        "{}",
        reply(&turn)
    );
}

#[tokio::test]
async fn out_of_scope_gets_an_honest_answer_and_a_yes_reaches_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let turn = say(&desk, "u4", "what's the weather in Lisbon tomorrow").await;
    assert_eq!(turn.status, Status::Bot);
    assert!(
        reply(&turn).to_lowercase().contains("team"),
        "{}",
        reply(&turn)
    );
    let turn = say(&desk, "u4", "yes please").await;
    assert_eq!(turn.status, Status::Queued);
    assert_eq!(turn.queue.as_ref().unwrap().name, "general");
}

#[tokio::test]
async fn angry_customer_lands_in_the_angry_queue_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let mut events = desk.subscribe();
    let turn = say(&desk, "u5", "this is ridiculous!!! my stuff never arrived").await;
    assert_eq!(turn.status, Status::Queued);
    let slot = turn.queue.clone().unwrap();
    assert_eq!((slot.name.as_str(), slot.position), ("angry", 1));
    assert!(
        reply(&turn).contains("number 1 in the queue"),
        "{}",
        reply(&turn)
    );

    let queues = desk.queues().await.unwrap();
    let angry = queues.iter().find(|q| q.name == "angry").unwrap();
    assert_eq!(angry.entries.len(), 1);
    let rules: Vec<_> = angry.entries[0]
        .reasons
        .iter()
        .map(|r| r.rule.as_str())
        .collect();
    assert!(
        rules.contains(&"angry message (frustration head)"),
        "{rules:?}"
    );
    let anger = angry.entries[0]
        .reasons
        .iter()
        .find(|r| r.when == "message_frustration")
        .unwrap();
    assert!(anger.value.to_string().contains("0.95"), "{anger:?}");

    let mut saw_queued = false;
    while let Ok(e) = events.try_recv() {
        saw_queued |= matches!(e.kind, DeskEventKind::Queued { ref queue, .. } if queue == "angry");
    }
    assert!(saw_queued, "a Queued event is published");
}

#[tokio::test]
async fn vip_goes_ahead_of_customers_who_waited_longer() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let first = say_as(&desk, "standard-1", "worst shop ever!!!", "standard", 120.0).await;
    let second = say_as(
        &desk,
        "standard-2",
        "I am furious, where is my parcel",
        "standard",
        80.0,
    )
    .await;
    assert_eq!(second.queue.as_ref().unwrap().position, 2);
    let mut events = desk.subscribe();
    let vip = say_as(&desk, "vip-1", "this is ridiculous!!!", "vip", 14000.0).await;
    assert_eq!(
        vip.queue.as_ref().unwrap().position,
        1,
        "the VIP is served first"
    );

    let angry = desk
        .queues()
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.name == "angry")
        .unwrap();
    let order: Vec<_> = angry
        .entries
        .iter()
        .map(|e| e.conversation_id.clone())
        .collect();
    assert_eq!(
        order,
        vec![
            vip.conversation_id.clone(),
            first.conversation_id.clone(),
            second.conversation_id.clone()
        ]
    );
    // The customers behind are told they moved down.
    let mut told = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let DeskEventKind::QueuePosition { position, .. } = e.kind {
            told.push((e.conversation_id, position));
        }
    }
    assert!(
        told.contains(&(first.conversation_id.clone(), 2)),
        "{told:?}"
    );
    assert!(
        told.contains(&(second.conversation_id.clone(), 3)),
        "{told:?}"
    );
}

#[tokio::test]
async fn agent_claims_replies_hands_back_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let turn = say(&desk, "u6", "I want to talk to a human").await;
    let id = turn.conversation_id.clone();
    assert_eq!(turn.status, Status::Queued);

    assert!(matches!(
        desk.claim("mallory", &id).await,
        Err(DeskError::Forbidden(_))
    ));
    let claimed = desk.claim("ana", &id).await.unwrap();
    assert_eq!(claimed.status, Status::WithAgent);
    assert_eq!(claimed.assigned_agent.as_deref(), Some("ana"));
    assert!(matches!(
        desk.claim("ben", &id).await,
        Err(DeskError::Conflict(_))
    ));
    assert_eq!(
        desk.agents()
            .await
            .iter()
            .find(|a| a.name == "ana")
            .unwrap()
            .active,
        1
    );

    // While Ana owns it the bot stays silent.
    let quiet = say(&desk, "u6", "where is my order 10001").await;
    assert_eq!(quiet.status, Status::WithAgent);
    assert!(quiet.replies.is_empty());
    assert!(matches!(
        desk.agent_reply("ben", &id, "hi").await,
        Err(DeskError::Forbidden(_))
    ));
    desk.agent_reply("ana", &id, "Hi, I'm looking at order 10001 now.")
        .await
        .unwrap();

    desk.hand_back("ana", &id).await.unwrap();
    let back = say_verified(&desk, "u6", "where is my order 10001", "C1001").await;
    assert_eq!(back.status, Status::Bot);
    assert!(reply(&back).contains("on its way"));

    desk.close("ana", &id).await.unwrap();
    let c = desk.conversation(&id).await.unwrap().unwrap();
    assert_eq!(c.status, Status::Closed);
    assert!(c
        .messages
        .iter()
        .any(|m| m.from == Speaker::Agent("ana".into())));
    assert_eq!(
        desk.conversation_of(ChannelKind::Rest, "u6").await.unwrap(),
        None
    );
    let again = say(&desk, "u6", "hello").await;
    assert_ne!(
        again.conversation_id, id,
        "writing again starts a new conversation"
    );
}

#[tokio::test]
async fn agent_capacity_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let mut ids = Vec::new();
    for user in ["a", "b", "c"] {
        ids.push(say(&desk, user, "agent please").await.conversation_id);
    }
    desk.claim("ben", &ids[0]).await.unwrap();
    desk.claim("ben", &ids[1]).await.unwrap();
    let third = desk.claim("ben", &ids[2]).await;
    assert!(
        matches!(third, Err(DeskError::Conflict(ref m)) if m.contains("capacity")),
        "{third:?}"
    );
}

#[tokio::test]
async fn idle_agent_loses_the_conversation_back_to_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let id = say(&desk, "u7", "human please").await.conversation_id;
    desk.claim("ana", &id).await.unwrap();
    say(&desk, "u7", "hello? anyone there?").await;
    let later = chrono::Utc::now() + chrono::Duration::seconds(600);
    let moved = desk
        .reassign_idle(std::time::Duration::from_secs(300), later)
        .await
        .unwrap();
    assert_eq!(moved, vec![id.clone()]);
    let c = desk.conversation(&id).await.unwrap().unwrap();
    assert_eq!(c.status, Status::Queued);
    assert_eq!(c.assigned_agent, None);
    assert_eq!(
        desk.agents()
            .await
            .iter()
            .find(|a| a.name == "ana")
            .unwrap()
            .active,
        0
    );
}

#[tokio::test]
async fn restart_keeps_conversations_queues_and_agents() {
    let dir = tempfile::tempdir().unwrap();
    let (queued, owned) = {
        let desk = keyword_desk(dir.path());
        let queued = say(&desk, "w1", "this is ridiculous!!!")
            .await
            .conversation_id;
        let owned = say(&desk, "w2", "agent").await.conversation_id;
        desk.claim("ana", &owned).await.unwrap();
        desk.agent_reply("ana", &owned, "Hello from Ana")
            .await
            .unwrap();
        (queued, owned)
    };
    // Give the workers a moment to drop their handles, then reopen the same folder (its
    // database, on PostgreSQL).
    while !crate::support::engine::postgres() {
        let probe = frontdesk::store::SledStore::open(dir.path());
        if probe.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let desk = keyword_desk(dir.path());
    let q = desk.conversation(&queued).await.unwrap().unwrap();
    assert_eq!(q.status, Status::Queued);
    assert_eq!(q.messages.len(), 2);
    let angry = desk
        .queues()
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.name == "angry")
        .unwrap();
    assert_eq!(angry.entries[0].conversation_id, queued);
    let o = desk.conversation(&owned).await.unwrap().unwrap();
    assert_eq!(o.assigned_agent.as_deref(), Some("ana"));
    assert!(o.messages.iter().any(|m| m.text == "Hello from Ana"));
    assert_eq!(
        desk.conversation_of(ChannelKind::Rest, "w2").await.unwrap(),
        Some(owned)
    );
    assert_eq!(
        desk.agents()
            .await
            .iter()
            .find(|a| a.name == "ana")
            .unwrap()
            .active,
        1
    );
}

#[tokio::test]
async fn customer_who_gets_angry_while_waiting_moves_up() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let first = say(&desk, "calm", "agent please").await;
    let second = say(&desk, "soon-angry", "agent please").await;
    assert_eq!(second.queue.as_ref().unwrap().position, 2);
    let waiting = say(&desk, "soon-angry", "this is ridiculous!!! still nobody").await;
    assert_eq!(waiting.status, Status::Queued);
    assert_eq!(
        waiting.queue.as_ref().unwrap().position,
        1,
        "{}",
        reply(&waiting)
    );
    let general = desk
        .queues()
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.name == "general")
        .unwrap();
    assert_eq!(general.entries[1].conversation_id, first.conversation_id);
    assert!(general.entries[0]
        .reasons
        .iter()
        .any(|r| r.rule == "angry message (frustration head)"));
}

#[tokio::test]
async fn frustration_score_and_reasons_reach_the_queue_view_and_the_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let rules = frontdesk::policy::Rules::parse(
        "[queues.angry]\nsla_secs = 60\n\
         [[rules]]\nname = \"souring conversation\"\nwhen = \"frustration\"\nat_least = 0.5\n\
         queue = \"angry\"\npriority = 55\n",
        std::path::Path::new("test-rules.toml"),
    )
    .unwrap();
    let desk = TestDesk::new().rules(rules).open(dir.path());
    let first = say(&desk, "u-f", "where is my order 10002").await;
    assert_eq!(first.status, Status::Bot);
    let c = desk
        .conversation(&first.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.frustration, 0.0, "{:?}", c.frustration_reasons);
    let turn = say(
        &desk,
        "u-f",
        "WHERE IS MY ORDER 10002, this is the third time I'm asking",
    )
    .await;
    assert_eq!(turn.status, Status::Queued);
    let queues = desk.queues().await.unwrap();
    let entry = &queues.iter().find(|q| q.name == "angry").unwrap().entries[0];
    assert!(entry.frustration >= 0.5, "{entry:?}");
    for r in ["third time asking", "asked the same question twice"] {
        assert!(
            entry.frustration_reasons.iter().any(|x| x == r),
            "{r}: {entry:?}"
        );
    }
    let reason = entry
        .reasons
        .iter()
        .find(|r| r.when == "frustration")
        .unwrap();
    assert!(reason.details.contains(&"third time asking".to_string()));
    let c = desk
        .conversation(&turn.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.frustration, entry.frustration);
    assert_eq!(c.frustration_reasons, entry.frustration_reasons);
}
