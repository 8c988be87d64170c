//! The outbox when an agent takes a conversation over: a bot answer queued before is not
//! sent, the agent's own messages and notices are.

use super::*;

/// The conversation `conv-taken` of Telegram user 9 as stored, with `status` and the time
/// an agent last took or spoke in it.
fn taken_record(
    status: &str,
    last_agent_at: Option<chrono::DateTime<Utc>>,
) -> crate::store::ConversationRecord {
    let now = Utc::now();
    serde_json::from_value(serde_json::json!({
        "id": "conv-taken", "customer": "c9", "channel": "telegram", "channel_user": "9",
        "status": status, "assigned_agent": if status == "with_agent" { Some("ana") } else { None },
        "queue": null, "priority": 0,
        "message_count": 2, "sentiment_trajectory": [], "slots": {}, "pending": null,
        "offered_human": false, "unresolved_turns": 0, "escalation": [], "queued_since": null,
        "created": now, "updated": now, "last_customer_at": now,
        "last_agent_at": last_agent_at, "delivery_failures": []
    }))
    .unwrap()
}

/// `text` said by the bot in `conv-taken` while it has `status`, stored (and queued for
/// Telegram) as a turn or an agent's action stores it.
async fn bot_says(store: &SledStore, status: &str, text: &str) {
    use crate::store::{Change, StoredMessage};
    store
        .apply(Change {
            conversations: vec![taken_record(status, None)],
            messages: vec![(
                ConversationId::from("conv-taken"),
                1,
                StoredMessage {
                    from: Speaker::Bot,
                    text: text.into(),
                    time: Utc::now(),
                    analysis: None,
                },
            )],
            ..Change::default()
        })
        .await
        .unwrap();
}

/// A bot answer still queued when an agent takes the conversation is not sent: it would talk
/// over the agent. The agent's own messages go out, and so does the notice written by the
/// agent's own action (it is no bot answer), even when the agent spoke after it.
#[tokio::test]
async fn a_bot_answer_is_not_sent_once_an_agent_took_over() {
    use crate::store::Change;
    let store = temporary();
    let outbox = open(&store).await;
    bot_says(&store, "bot", "a stale bot answer").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    bot_says(&store, "with_agent", "Ana from our team has joined").await;
    let mut agent = message("9", "Hi, Ana here");
    agent.conversation_id = ConversationId::from("conv-taken");
    agent.from = Speaker::Agent("Ana".into());
    // the agent spoke after both were queued
    let later = Utc::now() + chrono::Duration::seconds(1);
    store
        .apply(Change {
            conversations: vec![taken_record("with_agent", Some(later))],
            ..Change::default()
        })
        .await
        .unwrap();
    outbox.enqueue(agent).await.unwrap();
    store.flush().await.unwrap();
    let courier = Scripted::new(vec![]);
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    let got = courier.wait_accepted(2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    let texts: Vec<String> = courier.accepted().into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(got[0].1.contains("has joined"), "{got:?}");
    assert!(got[1].1.contains("Ana here"), "{got:?}");
    assert!(outbox
        .pending(ChannelKind::Telegram)
        .await
        .unwrap()
        .is_empty());
}
