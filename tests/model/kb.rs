//! The shipped help centre (`kb/`) with the real encoder: questions find their article, and
//! a server answers a documented question outside the intents with the passage and link.

use frontdesk::kb::Kb;

use crate::support::repo;
use crate::support::server::{real_nlu, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_retrieve_their_help_article() {
    let nlu = tokio::task::spawn_blocking(real_nlu).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let kb = Kb::load(&repo("kb"), nlu.nlu(), Some(cache.path())).unwrap();
    assert!(kb.articles().len() >= 25);
    for (question, article) in [
        ("do you take american express", "payment-methods"),
        ("can I pay in three instalments?", "klarna-instalments"),
        (
            "will I pay customs duties in switzerland",
            "international-shipping",
        ),
        (
            "how long is the guarantee on a sofa frame",
            "furniture-assembly",
        ),
        ("do you have a student discount", "student-discount"),
    ] {
        let v = nlu.nlu().embed(&[question]).unwrap().remove(0);
        let hits = kb.search(question, &v, 3);
        assert!(
            hits.iter().any(|h| h.article == article),
            "{question}: {:?}",
            hits.iter().map(|h| &h.article).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_question_outside_the_intents_is_answered_with_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let body = s.say("kb-1", "how long is a gift card valid?").await;
    let text = body["replies"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.starts_with("From our help centre — Gift cards:"),
        "{body}"
    );
    assert!(
        text.contains("https://shop.example/help/gift-cards"),
        "{body}"
    );
    assert_eq!(body["status"], "bot", "{body}");
}
