//! The outbox against a scripted courier: order, retries, permanent failures, restarts.

use super::*;
use crate::message::Speaker;
use crate::store::{Deliveries, SledStore};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// A courier that answers from a script, then succeeds; records what it accepted.
pub(super) struct Scripted {
    script: Mutex<VecDeque<Result<(), DeliveryError>>>,
    accepted: Mutex<Vec<(String, String)>>,
    attempts: Mutex<usize>,
    changed: Notify,
    /// When set: whether everything the store applied was on disk at each send.
    watched: Option<Arc<SledStore>>,
    on_disk_at_send: Mutex<Vec<bool>>,
}

impl Scripted {
    fn new(script: Vec<Result<(), DeliveryError>>) -> Arc<Self> {
        Arc::new(Self::build(script, None))
    }

    /// Accepts everything and notes, at each send, whether `store` had all on disk.
    fn watching(store: Arc<SledStore>) -> Arc<Self> {
        Arc::new(Self::build(vec![], Some(store)))
    }

    fn build(script: Vec<Result<(), DeliveryError>>, watched: Option<Arc<SledStore>>) -> Self {
        Scripted {
            script: Mutex::new(script.into()),
            accepted: Mutex::new(Vec::new()),
            attempts: Mutex::new(0),
            changed: Notify::new(),
            watched,
            on_disk_at_send: Mutex::new(Vec::new()),
        }
    }

    fn accepted(&self) -> Vec<(String, String)> {
        self.accepted.lock().unwrap().clone()
    }

    async fn wait_accepted(&self, n: usize) -> Vec<(String, String)> {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let wait = self.changed.notified();
                let got = self.accepted();
                if got.len() >= n {
                    return got;
                }
                wait.await;
            }
        })
        .await
        .expect("courier never accepted the expected messages")
    }
}

impl Courier for Scripted {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }
    fn dialect(&self) -> Dialect {
        Dialect::TelegramMarkdownV2
    }
    fn send<'a>(
        &'a self,
        message: &'a crate::message::Outbound,
        text: &'a str,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let recipient = message.channel_user.as_str();
            if let Some(store) = &self.watched {
                let on_disk = store.everything_on_disk();
                self.on_disk_at_send.lock().unwrap().push(on_disk);
            }
            *self.attempts.lock().unwrap() += 1;
            let next = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
            if next.is_ok() {
                self.accepted
                    .lock()
                    .unwrap()
                    .push((recipient.to_string(), text.to_string()));
            }
            self.changed.notify_waiters();
            next
        })
    }
}

pub(super) fn message(user: &str, text: &str) -> Outbound {
    Outbound {
        conversation_id: ConversationId::from(format!("conv-{user}").as_str()),
        channel: ChannelKind::Telegram,
        channel_user: user.to_string(),
        text: text.to_string(),
        from: Speaker::Bot,
        time: Utc::now(),
        turn: None,
        survey: None,
    }
}

pub(super) fn fast() -> RetryPolicy {
    RetryPolicy {
        first: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

pub(super) async fn open(store: &Arc<SledStore>) -> Outbox {
    let store: Arc<dyn Store> = store.clone();
    Outbox::with_policy(store, ChannelHealth::new(), fast())
        .await
        .unwrap()
}

pub(super) fn temporary() -> Arc<SledStore> {
    Arc::new(SledStore::temporary().unwrap())
}

#[tokio::test]
async fn messages_arrive_in_the_order_they_were_queued() {
    let store = temporary();
    let outbox = open(&store).await;
    for i in 0..5 {
        outbox
            .enqueue(message("7", &format!("answer {i}")))
            .await
            .unwrap();
    }
    let courier = Scripted::new(vec![]);
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    let got = courier.wait_accepted(5).await;
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["answer 0", "answer 1", "answer 2", "answer 3", "answer 4"]
    );
    task.abort();
    assert!(outbox
        .pending(ChannelKind::Telegram)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_without_loss() {
    let store = temporary();
    let outbox = open(&store).await;
    let courier = Scripted::new(vec![
        Err(DeliveryError::Retryable("500 Internal Server Error".into())),
        Err(DeliveryError::RateLimited {
            retry_after: Some(Duration::from_millis(20)),
            detail: "429".into(),
        }),
        Err(DeliveryError::Retryable("connection refused".into())),
    ]);
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    outbox.enqueue(message("7", "first")).await.unwrap();
    outbox.enqueue(message("7", "second")).await.unwrap();
    let got = courier.wait_accepted(2).await;
    assert_eq!(got[0].1, "first");
    assert_eq!(got[1].1, "second");
    assert_eq!(*courier.attempts.lock().unwrap(), 5);
    task.abort();
}

#[tokio::test]
async fn permanent_refusal_is_recorded_and_does_not_block_others() {
    let store = temporary();
    let outbox = open(&store).await;
    let courier = Scripted::new(vec![Err(DeliveryError::Permanent(
        "Forbidden: bot was blocked by the user".into(),
    ))]);
    let reported = Arc::new(Mutex::new(Vec::new()));
    let sink = reported.clone();
    let hook: FailureHook = Arc::new(move |f: FailedDelivery| {
        sink.lock().unwrap().push(f);
        Box::pin(async {})
    });
    outbox.enqueue(message("blocked", "hello?")).await.unwrap();
    outbox.enqueue(message("8", "still here")).await.unwrap();
    let task = outbox
        .spawn_courier(courier.clone(), Some(hook))
        .await
        .unwrap();
    let got = courier.wait_accepted(1).await;
    assert_eq!(got, vec![("8".to_string(), "still here".to_string())]);
    let failures = outbox
        .failures(&ConversationId::from("conv-blocked"))
        .await
        .unwrap();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].error.contains("blocked"));
    assert_eq!(reported.lock().unwrap().len(), 1);
    task.abort();
}

#[tokio::test]
async fn pending_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let outbox = open(&store).await;
        outbox
            .enqueue(message("7", "queued before the crash"))
            .await
            .unwrap();
        // No courier ran: the process dies here.
    }
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let outbox = open(&store).await;
    assert_eq!(
        outbox.pending(ChannelKind::Telegram).await.unwrap().len(),
        1
    );
    let courier = Scripted::new(vec![]);
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    let got = courier.wait_accepted(1).await;
    assert_eq!(got[0].1, "queued before the crash");
    task.abort();
}

#[tokio::test]
async fn a_retry_does_not_repeat_pieces_already_sent() {
    let store = temporary();
    let outbox = open(&store).await;
    let long = "Refunds reach your card within five working days. ".repeat(200);
    let pieces = Dialect::TelegramMarkdownV2
        .render(&message("7", &long))
        .len();
    assert!(pieces >= 3);
    // The second piece fails once; the first must not be sent twice.
    let courier = Scripted::new(vec![
        Ok(()),
        Err(DeliveryError::Retryable("502 Bad Gateway".into())),
    ]);
    outbox.enqueue(message("7", &long)).await.unwrap();
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    let got = courier.wait_accepted(pieces).await;
    assert_eq!(got.len(), pieces);
    let rendered = Dialect::TelegramMarkdownV2.render(&message("7", &long));
    let texts: Vec<String> = got.into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, rendered);
    task.abort();
}

#[tokio::test]
async fn rest_messages_are_not_accepted() {
    let store = temporary();
    let outbox = open(&store).await;
    let mut m = message("7", "hi");
    m.channel = ChannelKind::Rest;
    assert!(matches!(
        outbox.enqueue(m).await,
        Err(OutboxError::NotAPlatform(ChannelKind::Rest))
    ));
}

#[tokio::test]
async fn failures_keep_their_keys_across_a_restart() {
    // Sequence numbers continue after the highest key in either tree, so a message queued
    // after a restart never overwrites a recorded failure.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let outbox = open(&store).await;
        let courier = Scripted::new(vec![Err(DeliveryError::Permanent("Forbidden".into()))]);
        outbox.enqueue(message("blocked", "lost")).await.unwrap();
        let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
        outbox.enqueue(message("8", "delivered")).await.unwrap();
        courier.wait_accepted(1).await;
        task.abort();
        let _ = task.await;
    }
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let outbox = open(&store).await;
    let courier = Scripted::new(vec![Err(DeliveryError::Permanent("Forbidden".into()))]);
    outbox
        .enqueue(message("blocked", "lost again"))
        .await
        .unwrap();
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    outbox.enqueue(message("8", "delivered")).await.unwrap();
    courier.wait_accepted(1).await;
    task.abort();
    let failures = outbox
        .failures(&ConversationId::from("conv-blocked"))
        .await
        .unwrap();
    let texts: Vec<&str> = failures.iter().map(|f| f.message.text.as_str()).collect();
    assert_eq!(texts, ["lost", "lost again"]);
}

/// Rate-limits one chat (with the platform's `retry_after`) and accepts everyone else.
struct OneChatLimited {
    limited: String,
    retry_after: Duration,
    accepted: Mutex<Vec<(String, String, std::time::Instant)>>,
    refusals: Mutex<usize>,
    changed: Notify,
}

impl Courier for OneChatLimited {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }
    fn dialect(&self) -> Dialect {
        Dialect::TelegramMarkdownV2
    }
    fn send<'a>(
        &'a self,
        message: &'a crate::message::Outbound,
        text: &'a str,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let recipient = message.channel_user.as_str();
            let mut refusals = self.refusals.lock().unwrap();
            let result = if recipient == self.limited && *refusals < 1 {
                *refusals += 1;
                Err(DeliveryError::RateLimited {
                    retry_after: Some(self.retry_after),
                    detail: "Too Many Requests: retry after".into(),
                })
            } else {
                self.accepted.lock().unwrap().push((
                    recipient.to_string(),
                    text.to_string(),
                    std::time::Instant::now(),
                ));
                Ok(())
            };
            drop(refusals);
            self.changed.notify_waiters();
            result
        })
    }
}

/// One chat the platform rate-limits waits for its own `retry_after`; the other chats'
/// messages, queued after it, go out meanwhile, and the waiting chat keeps its order.
#[tokio::test]
async fn a_rate_limited_chat_does_not_hold_back_the_others() {
    let store = temporary();
    let outbox = open(&store).await;
    outbox.enqueue(message("slow", "slow 1")).await.unwrap();
    outbox.enqueue(message("slow", "slow 2")).await.unwrap();
    for i in 0..3 {
        outbox
            .enqueue(message("fast", &format!("fast {i}")))
            .await
            .unwrap();
    }
    let courier = Arc::new(OneChatLimited {
        limited: "slow".into(),
        retry_after: Duration::from_millis(1500),
        accepted: Mutex::new(Vec::new()),
        refusals: Mutex::new(0),
        changed: Notify::new(),
    });
    let started = std::time::Instant::now();
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    let all = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let wait = courier.changed.notified();
            let got = courier.accepted.lock().unwrap().clone();
            if got.len() >= 5 {
                return got;
            }
            wait.await;
        }
    })
    .await
    .expect("every message is delivered in the end");
    task.abort();
    let order: Vec<&str> = all.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(order, ["fast 0", "fast 1", "fast 2", "slow 1", "slow 2"]);
    let fast_done = all[2].2 - started;
    let slow_first = all[3].2 - started;
    assert!(
        fast_done < Duration::from_millis(1500),
        "the other chat did not wait out the limit: {fast_done:?}"
    );
    assert!(
        slow_first >= Duration::from_millis(1500),
        "retry_after was honoured: {slow_first:?}"
    );
}

/// A courier sends nothing that is not on disk yet: a reply applied with its turn waits for
/// the flush that makes the turn durable.
#[tokio::test]
async fn nothing_is_sent_before_it_is_on_disk() {
    let store = temporary();
    let outbox = open(&store).await;
    let courier = Scripted::new(vec![]);
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    store
        .queue_outbox(message("7", "not yet durable"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(courier.accepted().is_empty(), "sent before the flush");
    store.flush().await.unwrap();
    let got = courier.wait_accepted(1).await;
    assert_eq!(got[0].1, "not yet durable");
    task.abort();
}

/// A platform without idempotency keys (Telegram) shows a message twice when the process dies
/// between the platform accepting it and the outbox recording that. So before anything else
/// is sent, the previous acceptance is on disk: a kill can only ever repeat the one piece
/// whose mark was being flushed.
#[tokio::test]
async fn without_idempotency_keys_each_accepted_piece_is_on_disk_before_the_next_is_sent() {
    let store = temporary();
    let outbox = open(&store).await;
    for i in 0..4 {
        outbox
            .enqueue(message(&format!("{}", 10 + i % 2), &format!("answer {i}")))
            .await
            .unwrap();
    }
    // one long message in pieces: progress between pieces is recorded on disk too
    outbox
        .enqueue(message("12", &"word ".repeat(2000)))
        .await
        .unwrap();
    let courier = Scripted::watching(store.clone());
    assert!(!courier.deduplicates());
    let task = outbox.spawn_courier(courier.clone(), None).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let seen = courier.on_disk_at_send.lock().unwrap().clone();
            if seen.len() >= 6
                && outbox
                    .pending(ChannelKind::Telegram)
                    .await
                    .unwrap()
                    .is_empty()
            {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("every piece sent");
    task.abort();
    assert!(seen.len() >= 6, "the long message went in pieces: {seen:?}");
    assert!(
        seen.iter().all(|on_disk| *on_disk),
        "a piece was sent while an earlier acceptance was not on disk: {seen:?}"
    );
}

#[path = "tests_takeover.rs"]
mod takeover;
