//! The chat platform stories that are the same on Telegram and Discord, written once,
//! generic over [`ChatFake`]; `tests/fast/channels_*.rs` and `tests/fast/server_channels.rs`
//! call them per platform and add what only one platform has (Telegram's MarkdownV2 and
//! long polling, Discord's intents and mention policy).
//!
//! Desk-level stories run the real platform client (teloxide, serenity) against the fake
//! with a real desk behind it ([`Run`]); server-level ones start the whole server (keyword
//! NLU) with the platform, as `frontdesk serve` does.

use std::sync::Arc;

use frontdesk::channels::health::{ChannelHealth, ChannelState};
use frontdesk::channels::platforms::{Platforms, PlatformsConfig};
use frontdesk::desk::Desk;
use frontdesk::intake::Intake;
use frontdesk::message::{ChannelKind, ConversationId, Speaker, Status};
use frontdesk::outbox::FailureHook;
use frontdesk::store::Store;
use serde_json::Value;
use tempfile::TempDir;

use super::desk::{TestDesk, AGENT};
use super::eventually;
use super::fakes::{unescape, ChatFake, Failure};
use super::nlu::KeywordNlu;
use super::server::{config, serve_with_platforms, TestServer, ANA};

/// A token no fake accepts.
pub const WRONG_TOKEN: &str = "999:wrong-token";

/// The platforms on the desk's own store, messages through the intake.
pub async fn start_platforms(
    desk: &Desk,
    store: &Arc<dyn Store>,
    config: PlatformsConfig,
    hook: Option<FailureHook>,
) -> Platforms {
    Platforms::start(
        Intake::new(desk.clone()),
        store.clone(),
        config,
        ChannelHealth::new(),
        hook,
        std::time::Duration::from_secs(3),
    )
    .await
    .expect("start the chat platforms")
}

/// The conversation the desk opened for `user` on `kind`, once it has.
pub async fn conversation_of(desk: &Desk, kind: ChannelKind, user: u64) -> ConversationId {
    let what = format!("the desk to open a conversation for {kind:?} user {user}");
    eventually(&what, || async {
        desk.conversation_of(kind, &user.to_string()).await.unwrap()
    })
    .await
}

/// The bot's messages in a conversation, as stored by the desk.
pub async fn bot_messages(desk: &Desk, id: &ConversationId) -> Vec<String> {
    desk.conversation(id)
        .await
        .unwrap()
        .unwrap()
        .messages
        .into_iter()
        .filter(|m| m.from == Speaker::Bot)
        .map(|m| m.text)
        .collect()
}

/// The first link code (`K7QX-3MZD`) in `text`.
pub fn link_code(text: &str) -> String {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| {
            w.len() == 9 && w.as_bytes()[4] == b'-' && frontdesk::desk::normalise_code(w).is_some()
        })
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no link code in {text:?}"))
}

/// One platform's fake, a desk (keyword NLU) on a temp store, and the platforms in between.
pub struct Run<P: ChatFake> {
    pub fake: P,
    pub desk: Desk,
    pub store: Arc<dyn Store>,
    pub platforms: Platforms,
    pub dir: TempDir,
}

impl<P: ChatFake> Run<P> {
    /// A fresh fake, desk and platforms.
    pub async fn start() -> Run<P> {
        Run::with(P::start().await, None).await
    }

    /// `fake` (prepared by the test: failures to answer...) with a desk and platforms.
    pub async fn with(fake: P, hook: Option<FailureHook>) -> Run<P> {
        let dir = tempfile::tempdir().unwrap();
        let (desk, store) = TestDesk::new().open_with_store(dir.path());
        let mut config = PlatformsConfig::default();
        fake.configure(P::TOKEN, &mut config);
        let platforms = start_platforms(&desk, &store, config, hook).await;
        Run {
            fake,
            desk,
            store,
            platforms,
            dir,
        }
    }

    pub async fn conversation_of(&self, customer: u64) -> ConversationId {
        conversation_of(&self.desk, P::KIND, customer).await
    }

    pub async fn bot_messages(&self, id: &ConversationId) -> Vec<String> {
        bot_messages(&self.desk, id).await
    }

    pub fn state(&self) -> ChannelState {
        self.platforms.health().get(P::KIND).unwrap().state
    }

    pub async fn shutdown(self) {
        self.platforms.shutdown().await;
    }
}

/// A customer writes `first`, then asks where their order is: the bot's answers arrive,
/// exactly as the desk stored them, and the platform shows connected. The run is left
/// open for the platform's own checks.
pub async fn customer_gets_the_bots_answer<P: ChatFake>(first: &str) -> Run<P> {
    let run = Run::<P>::start().await;
    let customer = P::CUSTOMER;
    run.fake.says(customer, first);
    let greeting = run.fake.wait_for_texts(customer, 1).await.remove(0);
    let id = run.conversation_of(customer).await;
    assert_eq!(unescape(&greeting), run.bot_messages(&id).await[0]);

    run.fake.says(customer, "where is my order?");
    let answer = run.fake.wait_for_texts(customer, 2).await.remove(1);
    assert!(
        unescape(&answer).contains("order number"),
        "the bot should ask for the order number, said {answer:?}"
    );
    assert_eq!(run.state(), ChannelState::Connected);
    run
}

/// An angry customer is queued (and told so); the agent's reply reaches the chat. Returns
/// the run, the queue message and the reply as sent, for the platform's formatting checks.
pub async fn angry_customer_gets_the_agents_reply<P: ChatFake>(
    complaint: &str,
    agent_says: &str,
) -> (Run<P>, String, String) {
    let run = Run::<P>::start().await;
    let customer = P::CUSTOMER;
    run.fake.says(customer, complaint);
    let queued = run
        .fake
        .wait_for_text(customer, |t| t.contains("number 1 in the queue"))
        .await;
    let id = run.conversation_of(customer).await;
    let conversation = run.desk.conversation(&id).await.unwrap().unwrap();
    assert_eq!(conversation.status, Status::Queued);
    assert_eq!(conversation.queue.as_deref(), Some("angry"));

    run.desk.claim(AGENT, &id).await.unwrap();
    run.desk.agent_reply(AGENT, &id, agent_says).await.unwrap();
    let reply = run
        .fake
        .wait_for_text(customer, |t| t.contains(agent_says))
        .await;
    (run, queued, reply)
}

/// The platform answers the first deliveries with `failures`: each is retried (after the
/// time a rate limit asks for), every answer arrives once and in order, the outbox empties.
pub async fn failed_deliveries_are_retried_and_nothing_is_lost<P: ChatFake>(failures: &[Failure]) {
    let fake = P::start().await;
    fake.recorder().fail_next(failures);
    let run = Run::with(fake, None).await;
    let customer = P::CUSTOMER;

    run.fake.says(customer, "hello");
    run.fake.says(customer, "where is my order?");
    let sent = run.fake.wait_for_texts(customer, 2).await;
    let id = run.conversation_of(customer).await;
    let got: Vec<String> = sent.iter().map(|s| unescape(s)).collect();
    assert_eq!(
        got,
        run.bot_messages(&id).await,
        "every answer, once, in order"
    );
    assert_eq!(run.fake.recorder().attempts(), 2 + failures.len());
    eventually("the outbox to empty", || async {
        run.platforms
            .outbox()
            .pending(P::KIND)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    run.shutdown().await;
}

/// The platform is down (`down_for` failed attempts) longer than the bot runs: the answer
/// waits in the outbox (after at least `attempts` tries) and is delivered once the
/// platform is back and the bot restarted on the same store.
pub async fn pending_outbox_is_delivered_after_a_restart<P: ChatFake>(
    down_for: usize,
    attempts: usize,
) {
    let fake = P::start().await;
    fake.recorder()
        .fail_next(&vec![Failure::ServerError; down_for]);
    let Run {
        fake,
        desk,
        store,
        platforms,
        dir: _dir,
    } = Run::with(fake, None).await;
    let customer = P::CUSTOMER;
    fake.says(customer, "hello");
    eventually("the answer to wait in the outbox", || async {
        (fake.recorder().attempts() >= attempts
            && platforms.outbox().pending(P::KIND).await.unwrap().len() == 1)
            .then_some(())
    })
    .await;
    platforms.shutdown().await;
    assert!(fake.texts_to(customer).is_empty());

    // The platform is back; frontdesk restarts with the same data folder.
    let fake = fake.come_back().await;
    let mut config = PlatformsConfig::default();
    fake.configure(P::TOKEN, &mut config);
    let platforms = start_platforms(&desk, &store, config, None).await;
    let delivered = fake.wait_for_texts(customer, 1).await;
    let id = conversation_of(&desk, P::KIND, customer).await;
    assert_eq!(unescape(&delivered[0]), bot_messages(&desk, &id).await[0]);
    platforms.shutdown().await;
}

/// The customer refuses the bot (blocked it, closed their DMs): the refused answer is a
/// failed delivery on the conversation, reported once through the hook and counted in
/// the health, and not retried. Returns the recorded error, for the platform's wording.
pub async fn refused_delivery_is_recorded_as_a_failed_delivery<P: ChatFake>() -> String {
    let (tx, mut reported) = tokio::sync::mpsc::unbounded_channel();
    let hook: FailureHook = Arc::new(move |failed| {
        let _ = tx.send(failed);
        Box::pin(async {})
    });
    let run = Run::with(P::start().await, Some(hook)).await;
    let customer = P::CUSTOMER;
    run.fake.block(customer);
    run.fake.says(customer, "hello");
    let id = run.conversation_of(customer).await;
    let failures = eventually("the refusal to be recorded", || async {
        let f = run.platforms.outbox().failures(&id).await.unwrap();
        (!f.is_empty()).then_some(f)
    })
    .await;
    let hooked = reported.recv().await.unwrap();
    assert_eq!(hooked.message.conversation_id, id);
    let health = run.platforms.health().get(P::KIND).unwrap();
    assert_eq!(health.failed_deliveries, 1);
    assert!(run
        .platforms
        .outbox()
        .pending(P::KIND)
        .await
        .unwrap()
        .is_empty());
    run.shutdown().await;
    failures[0].error.clone()
}

/// `Bad` has a wrong token: it is reported failing, naming the setting to fix, and retried
/// (at least `retries` refused attempts) without giving up; `Good`, beside it, keeps
/// answering its customers.
pub async fn bad_token_is_retried_while_the_other_platform_works<Bad: ChatFake, Good: ChatFake>(
    retries: usize,
) {
    let bad = Bad::start().await;
    let good = Good::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let mut config = PlatformsConfig::default();
    bad.configure(WRONG_TOKEN, &mut config);
    good.configure(Good::TOKEN, &mut config);
    let platforms = start_platforms(&desk, &store, config, None).await;

    let status = eventually(
        "the platform with the wrong token to be reported failing",
        || async {
            platforms
                .health()
                .get(Bad::KIND)
                .filter(|s| s.state == ChannelState::Failing)
        },
    )
    .await;
    let error = status.error.unwrap_or_default();
    assert!(error.contains(Bad::TOKEN_SETTING), "{error}");
    // Retried with backoff, not given up.
    bad.recorder().wait_for_rejected(retries).await;
    assert_eq!(
        platforms.health().get(Bad::KIND).unwrap().state,
        ChannelState::Failing
    );

    good.says(Good::CUSTOMER, "hello");
    good.wait_for_texts(Good::CUSTOMER, 1).await;
    assert_eq!(
        platforms.health().get(Good::KIND).unwrap().state,
        ChannelState::Connected
    );
    platforms.shutdown().await;
}

/// A customer who started on `A` asks for a link code there; on `B` a wrong code is
/// refused and the right one links, once: both conversations are one customer's, and the
/// link commands never reach the conversation.
pub async fn customer_links_two_platforms_with_a_one_time_code<A: ChatFake, B: ChatFake>() {
    let a = A::start().await;
    let b = B::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let mut config = PlatformsConfig::default();
    a.configure(A::TOKEN, &mut config);
    b.configure(B::TOKEN, &mut config);
    let platforms = start_platforms(&desk, &store, config, None).await;

    // Started on A...
    a.says(A::CUSTOMER, "hello");
    a.wait_for_texts(A::CUSTOMER, 1).await;
    a.says(A::CUSTOMER, "/link");
    let code_message = a
        .wait_for_text(A::CUSTOMER, |t| t.contains("link code"))
        .await;
    let code = link_code(&unescape(&code_message));

    // ...a wrong code from B is refused...
    b.says(B::CUSTOMER, "/link 000000x");
    b.wait_for_text(B::CUSTOMER, |t| t.contains("could not link"))
        .await;
    // ...the right one links, once.
    b.says(B::CUSTOMER, &format!("/link {code}"));
    b.wait_for_text(B::CUSTOMER, |t| t.contains("Done")).await;
    b.says(B::CUSTOMER, "where is my order?");
    b.wait_for_text(B::CUSTOMER, |t| t.contains("order number"))
        .await;

    let on_a = desk
        .conversation(&conversation_of(&desk, A::KIND, A::CUSTOMER).await)
        .await
        .unwrap()
        .unwrap();
    let on_b = desk
        .conversation(&conversation_of(&desk, B::KIND, B::CUSTOMER).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on_b.customer, on_a.customer, "one customer");
    // Link commands never reach the conversation itself.
    assert!(on_b.messages.iter().all(|m| !m.text.contains("/link")));
    platforms.shutdown().await;
}

// Inside the whole server.

/// The server (keyword NLU) on `dir` with `fake`'s platform.
pub async fn serve_platform<P: ChatFake>(dir: &std::path::Path, fake: &P) -> TestServer {
    let mut platforms = PlatformsConfig::default();
    fake.configure(P::TOKEN, &mut platforms);
    serve_with_platforms(config(dir), KeywordNlu, platforms).await
}

/// The platform's entry in `/health`'s `components.channels`.
pub fn channel_health<P: ChatFake>(health: &Value) -> &Value {
    &health["components"]["channels"][P::KIND.as_str()]
}

/// In the server, a customer's question is answered on the platform, stored on the desk,
/// and `/health` shows the platform connected (and no other).
pub async fn server_answers_and_health_shows_the_platform<P: ChatFake>() {
    let fake = P::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve_platform(dir.path(), &fake).await;
    let customer = P::CUSTOMER;

    fake.says(customer, "where is my order?");
    let answer = fake
        .wait_for_text(customer, |t| t.contains("order number"))
        .await;
    let desk = &server.server.desk;
    let id = conversation_of(desk, P::KIND, customer).await;
    let stored = desk.conversation(&id).await.unwrap().unwrap();
    assert!(stored.messages.iter().any(|m| m.text == unescape(&answer)));

    let body = eventually("/health to show the platform connected", || async {
        let body = server.health().await;
        (channel_health::<P>(&body)["state"] == "connected").then_some(body)
    })
    .await;
    assert_eq!(channel_health::<P>(&body)["failed_deliveries"], 0);
    for other in ["telegram", "discord"] {
        if other != P::KIND.as_str() {
            assert!(
                body["components"]["channels"].get(other).is_none(),
                "{body}"
            );
        }
    }
    server.shutdown().await;
}

/// In the server, a customer who refuses the bot: the refused reply shows on the
/// conversation in the console and in `/health`, and outlives a restart. Returns the
/// failure as the console shows it, for the platform's wording.
pub async fn refused_delivery_shows_in_the_console<P: ChatFake>() -> Value {
    let fake = P::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve_platform(dir.path(), &fake).await;
    let customer = P::CUSTOMER;

    fake.block(customer);
    fake.says(customer, "where is my order?");
    let id = conversation_of(&server.server.desk, P::KIND, customer).await;
    let agent = server.login(ANA).await;
    let path = format!("/console/api/conversations/{}", id.0);
    let failure = eventually("the refused reply on the conversation", || async {
        let (status, body) = agent.get(&path).await;
        assert_eq!(status, 200, "{body}");
        body["delivery_failures"]
            .as_array()
            .and_then(|f| f.first().cloned())
    })
    .await;
    assert_eq!(failure["channel"], P::KIND.as_str());
    assert!(failure["text"].as_str().unwrap().contains("order number"));
    let body = server.health().await;
    assert_eq!(channel_health::<P>(&body)["failed_deliveries"], 1);
    assert!(fake.texts_to(customer).is_empty());
    server.shutdown().await;

    // The record outlives a restart.
    let server =
        serve_with_platforms(config(dir.path()), KeywordNlu, PlatformsConfig::default()).await;
    let stored = server.server.desk.conversation(&id).await.unwrap().unwrap();
    assert_eq!(stored.delivery_failures.len(), 1);
    server.shutdown().await;
    failure
}
