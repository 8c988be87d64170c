//! Proactive notices: the shop posts an event (`POST /api/v1/events` with a `shop` key) and
//! the order's owner hears it on the channel they last wrote from: through the real teloxide
//! client to the Telegram fake, or as an outbound message of a REST conversation. Then their
//! follow-up is answered about that order, and cancelling works through the usual checks.

use chrono::{Days, Utc};
use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::config::Config;
use frontdesk::config::{ChannelsConfig, TelegramSettings};
use frontdesk::message::ChannelKind;
use frontdesk::server::auth::Scope;
use serde_json::{json, Value};

use crate::support::eventually;
use crate::support::fakes::telegram::{unescape, FakeTelegram};
use crate::support::fakes::{ChatFake, Failure};
use crate::support::nlu::KeywordNlu;
use crate::support::scenarios::link_code;
use crate::support::server::{
    self, customer, replies, serve_with, serve_with_platforms, TestServer,
};

const CHAT: i64 = 7373;

/// The test configuration with no quiet hours (a run at night must not hold the notices).
fn config(dir: &std::path::Path) -> Config {
    let mut config = server::config(dir);
    config.notices.quiet_hours = String::new();
    config
}

/// A date two weeks ahead, as the event sends it and as the bot says it.
fn new_date() -> (String, String) {
    let d = Utc::now().date_naive() + Days::new(14);
    (
        d.format("%Y-%m-%d").to_string(),
        frontdesk::desk::notice::long_date(d),
    )
}

async fn post_event(server: &TestServer, key: Option<&str>, event: Value) -> (u16, Value) {
    let mut req = server.http.post(server.at("/api/v1/events")).json(&event);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// 10009 is C1025's (Jakub Walsh, postcode 1000-001), paid and not shipped yet.
fn delay(id: &str, date: &str) -> Value {
    json!({
        "type": "order_delayed", "id": id, "order": "10009", "new_date": date,
        "reason": "a supplier is late", "alternatives": ["wait", "cancel"]
    })
}

/// The bot lines of a REST conversation, as its integration reads them.
async fn rest_bot_lines(server: &TestServer, conversation: &str) -> Vec<String> {
    let (status, body) = server
        .get_with(
            &server.key,
            &format!("/api/v1/conversations/{conversation}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_reaches_telegram_and_the_follow_up_is_about_that_order() {
    let fake = FakeTelegram::start(FakeTelegram::TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let channels = ChannelsConfig {
        telegram: TelegramSettings {
            token: Some(FakeTelegram::TOKEN.into()),
            api_url: Some(fake.url.clone()),
            webhook_url: None,
            webhook_secret: None,
        },
        ..ChannelsConfig::default()
    };
    let platforms = PlatformsConfig::from_config(&channels).unwrap();
    let server = serve_with_platforms(config(dir.path()), KeywordNlu, platforms).await;
    let shop = server.api_key(Scope::Shop).await;

    // Jakub signs in on the shop's site (REST with the shop's token), links Telegram, and
    // writes from there.
    let jakub = customer("C1025", None, None);
    server.say_as("jakub", &jakub, "hello").await;
    let code = link_code(&replies(&server.say_as("jakub", &jakub, "/link").await));
    fake.customer_says(CHAT, &format!("/link {code}"));
    fake.wait_for_message(CHAT, |t| t.contains("linked")).await;
    fake.customer_says(CHAT, "hello");
    let before = fake.wait_for_messages(CHAT, 2).await.len();

    let (date, said_date) = new_date();
    let (status, body) = post_event(&server, Some(&shop), delay("evt-delay-1", &date)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["sent"], true, "{body}");
    assert_eq!(body["channel"], "telegram", "{body}");
    let notice = fake
        .wait_for_message(CHAT, |t| {
            t.contains("order 10009") && t.contains(&said_date)
        })
        .await;
    let text = unescape(&notice.text);
    assert!(
        text.contains("a supplier is late") && text.contains("cancel it"),
        "{text}"
    );
    assert_eq!(fake.sent_to(CHAT).len(), before + 1, "the notice, once");

    // Telegram was linked, never proved the shop account: the notice's own words, no more.
    fake.customer_says(CHAT, "when will it arrive now?");
    let follow = fake
        .wait_for_message(CHAT, |t| t.contains("As we wrote to you"))
        .await;
    let follow = unescape(&follow.text);
    assert!(
        follow.contains("10009") && follow.contains(&said_date),
        "{follow}"
    );
    assert!(
        !follow.contains("Cast iron pan"),
        "nothing the notice did not say: {follow}"
    );

    // Cancelling, as the notice offered: the usual check, the restated action, the yes.
    fake.customer_says(CHAT, "can I cancel it instead?");
    fake.wait_for_message(CHAT, |t| t.contains("postcode on that order"))
        .await;
    fake.customer_says(CHAT, "1000-001");
    fake.wait_for_message(CHAT, |t| t.contains("Cancel order 10009"))
        .await;
    fake.customer_says(CHAT, "yes");
    let done = fake
        .wait_for_message(CHAT, |t| t.contains("I've cancelled it"))
        .await;
    assert!(unescape(&done.text).contains("10009"), "{}", done.text);

    // The same event again: the first outcome, nothing sent twice.
    let sent = fake.sent_to(CHAT).len();
    let (status, again) = post_event(&server, Some(&shop), delay("evt-delay-1", &date)).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["repeated"], true, "{again}");
    assert_eq!(again["channel"], "telegram", "{again}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(fake.sent_to(CHAT).len(), sent, "nothing more on Telegram");
    server.shutdown().await;
}

/// "Nothing sent to a channel the customer left": Jakub's Telegram refused our last message
/// (he blocked the bot), so the notice goes to where he wrote before, the shop's REST chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_refused_our_messages_gets_no_notice() {
    let fake = FakeTelegram::start(FakeTelegram::TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let channels = ChannelsConfig {
        telegram: TelegramSettings {
            token: Some(FakeTelegram::TOKEN.into()),
            api_url: Some(fake.url.clone()),
            webhook_url: None,
            webhook_secret: None,
        },
        ..ChannelsConfig::default()
    };
    let platforms = PlatformsConfig::from_config(&channels).unwrap();
    let server = serve_with_platforms(config(dir.path()), KeywordNlu, platforms).await;
    let shop = server.api_key(Scope::Shop).await;
    let jakub = customer("C1025", None, None);
    let rest = server.say_as("jakub", &jakub, "hello").await;
    let rest_id = rest["conversation_id"].as_str().unwrap().to_string();
    let code = link_code(&replies(&server.say_as("jakub", &jakub, "/link").await));
    fake.customer_says(CHAT, &format!("/link {code}"));
    fake.wait_for_message(CHAT, |t| t.contains("linked")).await;

    // He writes on Telegram (so it is the channel he last used) and blocks the bot: the
    // answer is refused with 403 and noted on the conversation.
    fake.recorder().fail_next(&[Failure::Forbidden]);
    fake.customer_says(CHAT, "hello");
    let desk = &server.server.desk;
    eventually("the refusal noted on the Telegram conversation", || async {
        let id = desk
            .conversation_of(ChannelKind::Telegram, &CHAT.to_string())
            .await
            .unwrap()?;
        let c = desk.conversation(&id).await.unwrap()?;
        (!c.delivery_failures.is_empty()).then_some(())
    })
    .await;
    let sent = fake.sent_to(CHAT).len();

    let (date, said_date) = new_date();
    let (status, body) = post_event(&server, Some(&shop), delay("evt-left-1", &date)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["channel"], "rest",
        "not the channel that refused us: {body}"
    );
    let lines = rest_bot_lines(&server, &rest_id).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("10009") && l.contains(&said_date)),
        "{lines:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(fake.sent_to(CHAT).len(), sent, "nothing more on Telegram");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_shop_posts_events_and_its_key_reaches_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(config(dir.path()), KeywordNlu).await;
    let shop = server.api_key(Scope::Shop).await;
    let admin = server.api_key(Scope::Admin).await;
    let agent = server.api_key(Scope::Agent).await;
    let (date, _) = new_date();

    let (status, body) = post_event(&server, None, delay("e1", &date)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--scope shop"));
    let (status, _) = post_event(&server, Some("fd_nope_nope"), delay("e1", &date)).await;
    assert_eq!(status, 401);
    for key in [&server.key, &agent] {
        let (status, body) = post_event(&server, Some(key), delay("e1", &date)).await;
        assert_eq!(status, 403, "{body}");
    }
    // The shop's key reads no queue or conversation and posts no customer message.
    let (status, _) = server.get_with(&shop, "/api/v1/queues").await;
    assert_eq!(status, 403);
    let (status, _) = server.get_with(&shop, "/api/v1/conversations/x").await;
    assert_eq!(status, 403);
    let (status, _) = server
        .post_message_with(Some(&shop), json!({"user_id": "u", "text": "hi"}))
        .await;
    assert_eq!(status, 403);

    // An order the shop does not know: 404; an admin may post too.
    let unknown = json!({"type": "order_shipped", "order": "99999"});
    let (status, body) = post_event(&server, Some(&shop), unknown.clone()).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = post_event(&server, Some(&admin), unknown).await;
    assert_eq!(status, 404);
    // A bad event: 422 with what to send.
    let (status, body) = post_event(&server, Some(&shop), json!({"type": "parcel_lost"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("order_delayed"));
    let bad_date = json!({"type": "order_delayed", "order": "10009", "new_date": "soon"});
    let (status, body) = post_event(&server, Some(&shop), bad_date).await;
    assert_eq!(status, 422, "{body}");
    // The owner never wrote to us: no channel, said so.
    let (status, body) = post_event(&server, Some(&shop), delay("e2", &date)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["outcome"], "no_channel", "{body}");

    // The process's metrics (every server of this test binary counts into them).
    let metrics = frontdesk::metrics::handle().render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("frontdesk_notices_total{")
                && l.contains("type=\"order_shipped\"")
                && l.contains("outcome=\"unknown_order\"")),
        "{metrics}"
    );
    server.shutdown().await;
}

/// A REST customer signed in as C1025, with one conversation; its id.
async fn rest_customer(server: &TestServer) -> String {
    let turn = server
        .say_as("jakub", &customer("C1025", None, None), "hello")
        .await;
    turn["conversation_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_customer_reads_the_notice_in_their_conversation_and_asks_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(config(dir.path()), KeywordNlu).await;
    let shop = server.api_key(Scope::Shop).await;
    let conversation = rest_customer(&server).await;
    let (date, said_date) = new_date();

    let (status, body) = post_event(&server, Some(&shop), delay("rest-1", &date)).await;
    assert_eq!((status, body["sent"].clone()), (202, json!(true)), "{body}");
    assert_eq!(body["channel"], "rest");
    let lines = rest_bot_lines(&server, &conversation).await;
    let notice = lines.last().unwrap();
    assert!(
        notice.contains("10009") && notice.contains(&said_date),
        "{notice}"
    );

    // This identity proved the shop account: the order's own status, with the new date.
    let turn = server
        .say_as(
            "jakub",
            &customer("C1025", None, None),
            "when will it arrive now?",
        )
        .await;
    let answer = replies(&turn);
    assert!(answer.contains("Order 10009 is paid"), "{answer}");
    assert!(answer.contains(&said_date), "{answer}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_out_customers_get_nothing_and_the_cap_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.notices.max_per_day = 2;
    let server = serve_with(c, KeywordNlu).await;
    let shop = server.api_key(Scope::Shop).await;
    let conversation = rest_customer(&server).await;
    let jakub = customer("C1025", None, None);
    let shipped = |id: &str| json!({"type": "order_shipped", "id": id, "order": "10009"});

    let turn = server.say_as("jakub", &jakub, "stop notices").await;
    assert!(replies(&turn).contains("notices on"), "{}", replies(&turn));
    let (status, body) = post_event(&server, Some(&shop), shipped("s1")).await;
    assert_eq!(status, 202);
    assert_eq!(body["outcome"], "opted_out", "{body}");
    // Back in stock is promotional: only for those who asked for offers.
    let stock = json!({"type": "back_in_stock", "product": "Oak desk", "customer": "C1025"});
    let (_, body) = post_event(&server, Some(&shop), stock.clone()).await;
    assert_eq!(body["outcome"], "not_opted_in", "{body}");
    let lines = rest_bot_lines(&server, &conversation).await;
    assert!(
        !lines.iter().any(|l| l.contains("has shipped")),
        "{lines:?}"
    );

    server.say_as("jakub", &jakub, "notices on").await;
    server.say_as("jakub", &jakub, "offers on").await;
    let (_, body) = post_event(&server, Some(&shop), stock).await;
    assert_eq!(body["sent"], true, "{body}");
    let (_, body) = post_event(&server, Some(&shop), shipped("s2")).await;
    assert_eq!(body["sent"], true, "{body}");
    // Two notices today (notices.max_per_day = 2): the third is not sent.
    let (_, body) = post_event(&server, Some(&shop), shipped("s3")).await;
    assert_eq!(body["outcome"], "capped", "{body}");
    let lines = rest_bot_lines(&server, &conversation).await;
    assert_eq!(
        lines.iter().filter(|l| l.contains("has shipped")).count(),
        1,
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("Oak desk is back in stock")));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_in_quiet_hours_is_held_and_sent_when_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    // Quiet from an hour ago to an hour from now, in UTC.
    let now = Utc::now();
    let hhmm = |t: chrono::DateTime<Utc>| t.format("%H:%M").to_string();
    c.notices.quiet_hours = format!(
        "{}-{}",
        hhmm(now - chrono::Duration::hours(1)),
        hhmm(now + chrono::Duration::hours(1))
    );
    c.notices.time_zone = "UTC".into();
    let server = serve_with(c, KeywordNlu).await;
    let shop = server.api_key(Scope::Shop).await;
    let conversation = rest_customer(&server).await;
    let (date, said_date) = new_date();

    let (status, body) = post_event(&server, Some(&shop), delay("quiet-1", &date)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["sent"].clone(), body["outcome"].clone()),
        (json!(false), json!("held"))
    );
    assert!(
        body["why"].as_str().unwrap().contains("quiet hours"),
        "{body}"
    );
    let until: chrono::DateTime<Utc> = body["held_until"].as_str().unwrap().parse().unwrap();
    assert!(
        until > now && until <= now + chrono::Duration::hours(1) + chrono::Duration::minutes(1)
    );
    assert!(!rest_bot_lines(&server, &conversation)
        .await
        .iter()
        .any(|l| l.contains(&said_date)));

    // Not yet due: nothing; at the end of quiet hours: sent, once.
    let desk = &server.server.desk;
    assert_eq!(
        frontdesk::notices::release_held(desk, Utc::now(), false)
            .await
            .unwrap(),
        0
    );
    let at_end = until + chrono::Duration::seconds(1);
    assert_eq!(
        frontdesk::notices::release_held(desk, at_end, false)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        frontdesk::notices::release_held(desk, at_end, true)
            .await
            .unwrap(),
        0
    );
    let lines = rest_bot_lines(&server, &conversation).await;
    assert_eq!(
        lines.iter().filter(|l| l.contains(&said_date)).count(),
        1,
        "{lines:?}"
    );
    server.shutdown().await;
}
