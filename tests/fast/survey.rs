//! The satisfaction survey after an agent closes a conversation: the question on the
//! customer's own channel (Telegram's inline keyboard and Discord's buttons through the real
//! clients against the fakes, the widget's socket, a REST message), answers stored on the
//! conversation with a `Rated` milestone, skip, the one reminder, and presses by anyone but
//! the conversation's customer changing nothing.

use chrono::{Duration, Utc};
use frontdesk::config::SurveyConfig;
use frontdesk::desk::Desk;
use frontdesk::message::{ConversationId, Speaker, Status};
use frontdesk::store::{MilestoneKind, Store};
use serde_json::json;

use crate::support::desk::{say, TestDesk, AGENT};
use crate::support::eventually;
use crate::support::fakes::discord::{buttons, FakeDiscord};
use crate::support::fakes::telegram::{keyboard, FakeTelegram};
use crate::support::fakes::{unescape, ChatFake};
use crate::support::scenarios::Run;
use crate::support::server::{serve_keyword, Widget, ANA};

const COMPLAINT: &str = "I am furious, the parcel arrived broken *again*!";

/// Closes conversation `id` as the agent who owns it (auto-assignment may have given it to
/// anyone), or as ana while it waits.
async fn close(desk: &Desk, id: &ConversationId) {
    for _ in 0..50 {
        let c = desk.conversation(id).await.unwrap().unwrap();
        let agent = c.assigned_agent.unwrap_or_else(|| AGENT.to_string());
        if desk.close(&agent, id).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("could not close conversation {id}");
}

async fn csat(desk: &Desk, id: &ConversationId) -> Option<u8> {
    desk.conversation(id).await.unwrap().unwrap().rating.csat
}

/// The `Rated` milestones on the stored conversation: (survey, score).
async fn ratings(store: &dyn Store, id: &ConversationId) -> Vec<(String, u8)> {
    let record = store.conversation(id).await.unwrap().unwrap();
    record
        .timeline
        .into_iter()
        .filter_map(|m| match m.kind {
            MilestoneKind::Rated { survey, score } => Some((survey, score)),
            _ => None,
        })
        .collect()
}

fn bot_texts(c: &frontdesk::desk::Conversation) -> Vec<String> {
    c.messages
        .iter()
        .filter(|m| m.from == Speaker::Bot)
        .map(|m| m.text.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_close_sends_a_keyboard_and_the_customers_press_stores_the_rating() {
    let run = Run::<FakeTelegram>::start().await;
    let chat = FakeTelegram::CUSTOMER as i64;
    run.fake.says(FakeTelegram::CUSTOMER, COMPLAINT);
    run.fake
        .wait_for_text(FakeTelegram::CUSTOMER, |t| t.contains("in the queue"))
        .await;
    let id = run.conversation_of(FakeTelegram::CUSTOMER).await;
    close(&run.desk, &id).await;

    let question = run
        .fake
        .recorder()
        .wait_for_one("the survey question", |s| {
            s.chat_id == chat && s.reply_markup.is_object()
        })
        .await;
    assert!(
        unescape(&question.text).contains("1 (poor) to 5"),
        "{}",
        question.text
    );
    let rows = keyboard(&question);
    let labels: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(|(l, _)| l.as_str()).collect())
        .collect();
    assert_eq!(labels, vec![vec!["1", "2", "3", "4", "5"], vec!["Skip"]]);
    // The survey comes after the close's own line.
    let texts = run.fake.texts_to(FakeTelegram::CUSTOMER);
    let closed_at = texts.iter().position(|t| unescape(t).contains("closed"));
    let asked_at = texts
        .iter()
        .position(|t| unescape(t).contains("1 (poor) to 5"));
    assert!(closed_at < asked_at, "{texts:?}");
    let four = rows[0][3].1.clone();
    let two = rows[0][1].1.clone();

    // Someone else presses the customer's "4" (a forged callback with its data): nothing.
    let attacker: i64 = 6666;
    let forged = run.fake.press(attacker, attacker, &four);
    let said = run.fake.wait_for_callback_answer(&forged).await;
    assert!(said.is_some_and(|t| t.contains("closed")));
    assert_eq!(csat(&run.desk, &id).await, None);

    // The customer presses 4: stored, with its milestone, and thanked.
    let press = run.fake.press(chat, chat, &four);
    assert_eq!(run.fake.wait_for_callback_answer(&press).await, None);
    assert_eq!(csat(&run.desk, &id).await, Some(4));
    assert_eq!(
        ratings(&*run.store, &id).await,
        vec![("csat".to_string(), 4)]
    );
    run.fake
        .wait_for_text(FakeTelegram::CUSTOMER, |t| {
            t.contains("Thank you for your rating")
        })
        .await;

    // A second press changes nothing: the first answer counts.
    let again = run.fake.press(chat, chat, &two);
    run.fake.wait_for_callback_answer(&again).await;
    assert_eq!(csat(&run.desk, &id).await, Some(4));
    assert_eq!(ratings(&*run.store, &id).await.len(), 1);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_close_sends_buttons_and_the_customers_interaction_stores_the_rating() {
    let run = Run::<FakeDiscord>::start().await;
    let customer = FakeDiscord::CUSTOMER;
    run.fake.says(customer, COMPLAINT);
    run.fake
        .wait_for_text(customer, |t| t.contains("in the queue"))
        .await;
    let id = run.conversation_of(customer).await;
    close(&run.desk, &id).await;

    let dm = run.fake.dm_channel_of(customer);
    let question = run
        .fake
        .recorder()
        .wait_for_one("the survey question", |s| {
            s.channel_id == dm && s.components.is_array()
        })
        .await;
    let rows = buttons(&question);
    let labels: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(|(l, _)| l.as_str()).collect())
        .collect();
    assert_eq!(labels, vec![vec!["1", "2", "3", "4", "5"], vec!["Skip"]]);
    let five = rows[0][4].1.clone();

    // Another Discord user presses with the customer's button id: only acknowledged.
    let forged = run.fake.press(555_000_000_000_000_777, &question, &five);
    assert_eq!(run.fake.wait_for_callback(forged).await.kind, 6);
    assert_eq!(csat(&run.desk, &id).await, None);

    // The customer's press counts, and the buttons are taken off the message.
    let press = run.fake.press(customer, &question, &five);
    let answered = run.fake.wait_for_callback(press).await;
    assert_eq!(answered.kind, 7);
    assert_eq!(answered.data["components"], json!([]));
    assert_eq!(csat(&run.desk, &id).await, Some(5));
    assert_eq!(
        ratings(&*run.store, &id).await,
        vec![("csat".to_string(), 5)]
    );
    run.shutdown().await;
}

#[tokio::test]
async fn rest_customer_rates_by_typing_the_number_after_the_question() {
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let id = say(&desk, "rest-rater", "agent please")
        .await
        .conversation_id;
    close(&desk, &id).await;
    let c = desk.conversation(&id).await.unwrap().unwrap();
    assert!(
        bot_texts(&c).last().unwrap().contains("1 (poor) to 5"),
        "the question is the conversation's last message: {:?}",
        bot_texts(&c)
    );

    let rated = say(&desk, "rest-rater", "4").await;
    assert_eq!(rated.conversation_id, id);
    assert_eq!(rated.status, Status::Closed);
    assert_eq!(rated.replies.len(), 1);
    assert!(rated.replies[0].text.contains("Thank you"));
    assert_eq!(csat(&desk, &id).await, Some(4));
    assert_eq!(ratings(&*store, &id).await, vec![("csat".to_string(), 4)]);

    // Only once: another number is a normal message now, in a new conversation.
    let next = say(&desk, "rest-rater", "2").await;
    assert_ne!(next.conversation_id, id);
    assert_eq!(csat(&desk, &id).await, Some(4));
}

#[tokio::test]
async fn rest_nps_follows_csat_when_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    desk.set_survey(SurveyConfig {
        nps: true,
        ..SurveyConfig::default()
    });
    let id = say(&desk, "promoter", "agent please").await.conversation_id;
    close(&desk, &id).await;
    // An NPS-only score is not a CSAT answer: a normal message.
    assert_ne!(say(&desk, "promoter", "9").await.conversation_id, id);
    let again = say(&desk, "promoter", "agent please").await.conversation_id;
    close(&desk, &again).await;

    let rated = say(&desk, "promoter", "5").await;
    let replies: Vec<&str> = rated.replies.iter().map(|r| r.text.as_str()).collect();
    assert!(replies[0].contains("Thank you"), "{replies:?}");
    assert!(replies[1].contains("0 (not at all) to 10"), "{replies:?}");
    let recommended = say(&desk, "promoter", "9").await;
    assert_eq!(recommended.conversation_id, again);
    let c = desk.conversation(&again).await.unwrap().unwrap();
    assert_eq!((c.rating.csat, c.rating.nps), (Some(5), Some(9)));
    assert_eq!(
        ratings(&*store, &again).await,
        vec![("csat".to_string(), 5), ("nps".to_string(), 9)]
    );
}

#[tokio::test]
async fn skip_ends_the_survey_and_no_reminder_follows() {
    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().open(dir.path());
    let id = say(&desk, "skipper", "agent please").await.conversation_id;
    close(&desk, &id).await;
    let skipped = say(&desk, "skipper", "Skip").await;
    assert_eq!(skipped.conversation_id, id);
    assert!(skipped.replies[0].text.contains("No problem"));
    let later = Utc::now() + Duration::hours(3);
    assert_eq!(desk.remind_surveys(later).await.unwrap(), 0);
    let c = desk.conversation(&id).await.unwrap().unwrap();
    assert_eq!(c.rating.csat, None);
    assert!(!bot_texts(&c).iter().any(|t| t.contains("reminder")));
}

#[tokio::test]
async fn one_reminder_at_most_and_none_after_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().open(dir.path());
    let id = say(&desk, "forgetful", "agent please")
        .await
        .conversation_id;
    close(&desk, &id).await;
    let now = Utc::now();
    assert_eq!(
        desk.remind_surveys(now + Duration::minutes(30))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        desk.remind_surveys(now + Duration::minutes(61))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        desk.remind_surveys(now + Duration::minutes(120))
            .await
            .unwrap(),
        0
    );
    let c = desk.conversation(&id).await.unwrap().unwrap();
    let reminders = bot_texts(&c)
        .iter()
        .filter(|t| t.contains("reminder"))
        .count();
    assert_eq!(reminders, 1);
    // The reminder's question is still answerable.
    assert!(say(&desk, "forgetful", "3").await.replies[0]
        .text
        .contains("Thank you"));
    assert_eq!(csat(&desk, &id).await, Some(3));

    let other = say(&desk, "prompt", "agent please").await.conversation_id;
    close(&desk, &other).await;
    say(&desk, "prompt", "5").await;
    assert_eq!(
        desk.remind_surveys(now + Duration::minutes(61))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn no_survey_after_a_block_or_when_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().open(dir.path());
    let id = say(&desk, "abuser", "agent please").await.conversation_id;
    desk.block_customer(AGENT, &id, "abuse").await.unwrap();
    let c = desk.conversation(&id).await.unwrap().unwrap();
    assert!(!bot_texts(&c).iter().any(|t| t.contains("1 (poor) to 5")));

    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().open(dir.path());
    desk.set_survey(SurveyConfig {
        csat: false,
        ..SurveyConfig::default()
    });
    let id = say(&desk, "quiet", "agent please").await.conversation_id;
    close(&desk, &id).await;
    let c = desk.conversation(&id).await.unwrap().unwrap();
    assert!(!bot_texts(&c).iter().any(|t| t.contains("1 (poor) to 5")));
    assert_ne!(say(&desk, "quiet", "4").await.conversation_id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_visitor_rates_with_stars_and_another_visitor_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let mut visitor = Widget::connect(&s, None, None).await;
    visitor.send("I want to talk to a human agent").await;
    let turn = visitor.next_of("turn").await;
    let id = ConversationId(turn["conversation_id"].as_str().unwrap().to_string());
    let ana = s.login(ANA).await;
    close(&s.server.desk, &id).await;

    let question = visitor.next_of("survey").await;
    assert_eq!(question["conversation_id"], id.0.as_str());
    assert_eq!(
        (question["min"].as_u64(), question["max"].as_u64()),
        (Some(1), Some(5))
    );
    assert!(question["text"].as_str().unwrap().contains("1 (poor) to 5"));

    // Another visitor sends the same answer for this conversation: it does not count.
    let mut other = Widget::connect(&s, None, None).await;
    let answer = json!({"type": "survey", "conversation_id": id.0, "survey": "csat", "score": 1});
    other
        .send_raw(tokio_tungstenite::tungstenite::Message::Text(
            answer.to_string().into(),
        ))
        .await;
    assert_eq!(other.next_of("survey_answered").await["counted"], false);
    assert_eq!(csat(&s.server.desk, &id).await, None);

    // A reload shows the open question again.
    let mut reloaded = Widget::connect(&s, Some(&visitor.token()), None).await;
    assert_eq!(reloaded.welcome["survey"]["survey"], "csat");

    let answer = json!({"type": "survey", "conversation_id": id.0, "survey": "csat", "score": 5});
    reloaded
        .send_raw(tokio_tungstenite::tungstenite::Message::Text(
            answer.to_string().into(),
        ))
        .await;
    assert_eq!(reloaded.next_of("survey_answered").await["counted"], true);
    assert_eq!(csat(&s.server.desk, &id).await, Some(5));
    let thanks = reloaded.next_of("bot").await;
    assert!(thanks["text"].as_str().unwrap().contains("Thank you"));
    // The console's conversation shows the rating.
    let (_, transcript) = ana
        .get(&format!("/console/api/conversations/{}", id.0))
        .await;
    assert_eq!(transcript["rating"]["csat"], 5);
    eventually("the widget's survey to be closed", || async {
        let w = Widget::connect(&s, Some(&visitor.token()), None).await;
        w.welcome.get("survey").is_none().then_some(())
    })
    .await;
    s.shutdown().await;
}
