//! The widget's courier: every line a widget customer reads outside their own turn comes
//! from the outbox, on every socket of that customer, once; the tab that sent the message
//! reads its answers in its `turn` frame only; nobody else's lines reach a socket.

use frontdesk::message::{ChannelKind, ConversationId, Outbound, Speaker};
use serde_json::{json, Value};

use crate::support::eventually;
use crate::support::server::{serve_keyword, Widget, ANA};

/// The frames before the next one of `kind`, and that one.
async fn until(widget: &mut Widget, kind: &str) -> (Vec<Value>, Value) {
    let mut before = Vec::new();
    loop {
        let frame = widget.next().await;
        if frame["type"] == kind {
            return (before, frame);
        }
        before.push(frame);
    }
}

fn texts(turn: &Value) -> Vec<String> {
    turn["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn two_tabs_of_one_visitor_each_read_every_answer_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let mut sender = Widget::connect(&s, None, None).await;
    let mut other = Widget::connect(&s, Some(&sender.token()), None).await;

    let mut frames = Vec::new();
    let mut expected = Vec::new();
    for text in [
        "hello there",
        "how long does delivery take",
        "where is my order 12345",
        "cancel my order 12345",
    ] {
        sender.send(text).await;
        let (before, turn) = until(&mut sender, "turn").await;
        frames.extend(before);
        let answers = texts(&turn);
        assert!(!answers.is_empty(), "{turn}");
        // The other tab reads each line of the turn, in order, and nothing twice.
        for answer in &answers {
            let line = other.next_of("bot").await;
            assert_eq!(line["text"], answer.as_str(), "the other tab's next line");
        }
        expected.extend(answers);
    }
    // The sending tab read its answers in its turns only: the courier's copies were skipped
    // (any of the first three would have arrived before the fourth turn).
    let repeated: Vec<&Value> = frames.iter().filter(|f| f["type"] == "bot").collect();
    assert!(
        repeated.is_empty(),
        "the sending tab got lines it had in its turns: {repeated:?}"
    );
    assert!(expected.len() >= 4);
    let store = s.server.store.clone();
    eventually("the widget's outbox to empty", || async {
        (store.outbox_len(ChannelKind::Web).await.unwrap() == 0).then_some(())
    })
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_line_queued_for_a_visitor_reaches_their_socket_and_no_one_elses() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let mut visitor = Widget::connect(&s, None, None).await;
    let mut stranger = Widget::connect(&s, None, None).await;
    visitor.send("hello").await;
    let turn = visitor.next_of("turn").await;
    let user = visitor.welcome["user"].as_str().unwrap().to_string();

    // Anything in the outbox for the widget reaches the customer's open socket.
    s.server
        .desk
        .queue_reply(Outbound {
            conversation_id: ConversationId(turn["conversation_id"].as_str().unwrap().into()),
            channel: ChannelKind::Web,
            channel_user: user,
            text: "Your parcel was handed to the carrier.".into(),
            from: Speaker::Bot,
            time: chrono::Utc::now(),
            turn: None,
            survey: None,
        })
        .await
        .unwrap();
    let line = visitor.next_of("bot").await;
    assert_eq!(line["text"], "Your parcel was handed to the carrier.");

    // Another visitor's socket never gets it: its own next turn comes with nothing before.
    stranger.send("hello").await;
    let (before, _) = until(&mut stranger, "turn").await;
    assert!(
        before.iter().all(|f| f["type"] != "bot"),
        "a stranger's socket got someone else's line: {before:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn an_agents_reply_reaches_the_widget_through_the_outbox_and_a_reload_shows_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let mut widget = Widget::connect(&s, None, None).await;
    widget.send("I want to talk to a human agent").await;
    let turn = widget.next_of("turn").await;
    assert_eq!(turn["status"], "queued", "{turn}");
    let id = turn["conversation_id"].as_str().unwrap().to_string();

    let ana = s.login(ANA).await;
    ana.act(&id, "claim", None).await;
    ana.act(
        &id,
        "reply",
        Some(json!({"text": "Ana here: let me look."})),
    )
    .await;
    let line = widget.next_of("agent").await;
    assert_eq!(line["text"], "Ana here: let me look.", "{line}");
    assert!(line["agent"].as_str().is_some_and(|a| !a.is_empty()));

    // A reload reads it in the history, and no frame repeats it afterwards.
    let mut again = Widget::connect(&s, Some(&widget.token()), None).await;
    let history = again.welcome["history"].as_array().unwrap().clone();
    let shown = history
        .iter()
        .filter(|h| h["text"] == "Ana here: let me look.")
        .count();
    assert_eq!(shown, 1, "{history:?}");
    ana.act(&id, "reply", Some(json!({"text": "Found it."})))
        .await;
    let (before, next) = until(&mut again, "agent").await;
    assert_eq!(next["text"], "Found it.");
    assert!(
        before.iter().all(|f| f["type"] != "agent"),
        "a line of the history came again: {before:?}"
    );
    s.shutdown().await;
}
