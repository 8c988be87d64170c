//! The checks of the outbox and the channels' state.

use super::*;
use crate::message::Speaker;

/// Platform replies are queued by the change that wrote them, handed out per channel in the
/// order written, keep their progress, and leave once done; the widget's are queued in their
/// own channel, named by their turn; REST's are not queued.
pub(super) async fn outbox_records_leave_with_their_turn_in_order(store: &dyn Store) {
    store.apply(telegram_turn("t1", "first")).await.unwrap();
    store.apply(telegram_turn("t2", "second")).await.unwrap();
    let mut web = telegram_turn("w1", "on the widget");
    web.conversations[0].channel = ChannelKind::Web;
    web.turn = Some("turn-w1".into());
    store.apply(web).await.unwrap();
    let mut rest = telegram_turn("r1", "over REST");
    rest.conversations[0].channel = ChannelKind::Rest;
    store.apply(rest).await.unwrap();
    store
        .queue_outbox(Outbound {
            conversation_id: ConversationId("t3".into()),
            channel: ChannelKind::Discord,
            channel_user: "555".into(),
            text: "linked".into(),
            from: Speaker::Bot,
            time: Utc::now(),
            turn: None,
            survey: None,
        })
        .await
        .unwrap();
    store.flush().await.unwrap();
    let pending = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap();
    let texts: Vec<_> = pending
        .iter()
        .map(|e| e.parcel.message.text.as_str())
        .collect();
    assert_eq!(texts, ["first", "second"]);
    assert!(pending[0].id < pending[1].id);
    assert!(
        pending[0].parcel.bot_answer,
        "a bot answer of a bot-owned conversation"
    );
    assert_eq!(store.outbox_len(ChannelKind::Telegram).await.unwrap(), 2);
    assert_eq!(store.outbox_len(ChannelKind::Rest).await.unwrap(), 0);
    let web = store.outbox_pending(ChannelKind::Web, 10).await.unwrap();
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].parcel.message.text, "on the widget");
    assert_eq!(web[0].parcel.message.turn.as_deref(), Some("turn-w1"));
    assert_eq!(
        store
            .outbox_pending(ChannelKind::Discord, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .outbox_pending(ChannelKind::Telegram, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let mut first = pending[0].clone();
    first.parcel.pieces_sent = 1;
    first.parcel.attempts = 2;
    store.outbox_progress(&first).await.unwrap();
    let again = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap();
    assert_eq!(
        (again[0].parcel.pieces_sent, again[0].parcel.attempts),
        (1, 2)
    );
    store.outbox_done(&again[0]).await.unwrap();
    store.flush().await.unwrap();
    let left = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].parcel.message.text, "second");
}

/// A refused record leaves the outbox and is kept, for its conversation's agent.
pub(super) async fn a_refused_record_moves_to_the_failed_deliveries(store: &dyn Store) {
    store
        .apply(telegram_turn("t1", "never arrives"))
        .await
        .unwrap();
    store.flush().await.unwrap();
    let entry = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap()
        .remove(0);
    let failed = FailedDelivery {
        message: entry.parcel.message.clone(),
        error: "Forbidden: bot was blocked by the user".into(),
        time: Utc::now(),
    };
    store.outbox_failed(&entry, &failed).await.unwrap();
    store.flush().await.unwrap();
    assert!(store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap()
        .is_empty());
    let kept = store
        .failed_deliveries(&ConversationId("t1".into()))
        .await
        .unwrap();
    assert_eq!(kept, [failed]);
    assert!(store
        .failed_deliveries(&ConversationId("t2".into()))
        .await
        .unwrap()
        .is_empty());
}

/// An adapter's small records: set, read, updated under a lock, listed in key order.
pub(super) async fn channel_state_is_kept_and_updated_atomically(store: &dyn Store) {
    let d = ChannelKind::Discord;
    store
        .set_channel_state(d, "user:2", Some("b"))
        .await
        .unwrap();
    store
        .set_channel_state(d, "user:1", Some("a"))
        .await
        .unwrap();
    store
        .set_channel_state(ChannelKind::Telegram, "user:1", Some("t"))
        .await
        .unwrap();
    assert_eq!(
        store.channel_state(d, "user:1").await.unwrap().as_deref(),
        Some("a")
    );
    let listed = store.channel_states(d).await.unwrap();
    assert_eq!(
        listed,
        [
            ("user:1".to_string(), "a".to_string()),
            ("user:2".into(), "b".into())
        ]
    );
    let count = |old: Option<&str>| {
        Some((old.and_then(|o| o.parse::<u32>().ok()).unwrap_or(0) + 1).to_string())
    };
    let updates = (0..20).map(|_| store.update_channel_state(d, "seen:9", &count));
    for r in futures::future::join_all(updates).await {
        r.unwrap();
    }
    assert_eq!(
        store.channel_state(d, "seen:9").await.unwrap().as_deref(),
        Some("20")
    );
    store.set_channel_state(d, "user:2", None).await.unwrap();
    assert_eq!(store.channel_state(d, "user:2").await.unwrap(), None);
    assert_eq!(
        store.channel_states(ChannelKind::Telegram).await.unwrap(),
        [("user:1".to_string(), "t".to_string())]
    );
}
