//! The help centre without a model: articles read from a folder, passages found by a fake
//! embedder (hashed words) and BM25, the cache of embeddings, and a desk that answers an
//! out-of-scope question with the passage and its link; the folder read again when it
//! changes; `eval answers` with the answer task against a fake LLM endpoint.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::time::{Duration, Instant};

use crate::support::fakes::llm::{answer_json, Fake, Reply};
use crate::support::kb::{folder_help_centre, WordsEmbedder};
use frontdesk::kb::eval::{self as kb_eval, Question};
use frontdesk::kb::{Embedder, HelpCentre, Kb, KbError};

fn write_articles(dir: &Path) {
    std::fs::write(
        dir.join("returns.md"),
        "# Returns and refunds\n\nReturns are free within 30 days of delivery.\n\n\
         ## How to return an item\n\nOpen your orders, choose Return items and print the \
         prepaid label.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("gift-cards.md"),
        "# Gift cards\n\nGift cards are valid for 3 years.\n\n## Balance\n\nEnter the gift \
         card code on the Gift cards page to see the balance.\n",
    )
    .unwrap();
}

fn search(kb: &Kb, e: &WordsEmbedder, q: &str) -> Vec<frontdesk::kb::Hit> {
    let v = e.embed(&[q]).unwrap().remove(0);
    kb.search(q, &v, 3)
}

#[test]
fn questions_find_their_article_with_title_section_and_link() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let e = WordsEmbedder::default();
    let kb = Kb::load(dir.path(), &e, None).unwrap();
    let hits = search(&kb, &e, "how do I print a return label?");
    assert_eq!(hits[0].article, "returns");
    assert_eq!(hits[0].title, "Returns and refunds");
    assert_eq!(hits[0].section, "How to return an item");
    assert_eq!(hits[0].url, "https://shop.example/help/returns");
    assert!(hits[0].passage.contains("prepaid label"));
    assert!(hits[0].score > hits[1].score);
    assert_eq!(
        search(&kb, &e, "gift card balance")[0].article,
        "gift-cards"
    );
}

#[test]
fn restart_reuses_cached_embeddings_until_an_article_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let e = WordsEmbedder::default();
    Kb::load(dir.path(), &e, Some(cache.path())).unwrap();
    let first = e.calls.load(Ordering::SeqCst);
    assert!(first > 0);
    Kb::load(dir.path(), &e, Some(cache.path())).unwrap();
    assert_eq!(
        e.calls.load(Ordering::SeqCst),
        first,
        "a restart embeds nothing"
    );
    std::fs::write(
        dir.path().join("gift-cards.md"),
        "# Gift cards\n\nGift cards are valid for 5 years.\n",
    )
    .unwrap();
    let kb = Kb::load(dir.path(), &e, Some(cache.path())).unwrap();
    assert!(
        e.calls.load(Ordering::SeqCst) > first,
        "a changed article is embedded again"
    );
    assert!(search(&kb, &e, "gift card valid")[0]
        .passage
        .contains("5 years"));
}

#[test]
fn a_folder_without_articles_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Kb::load(dir.path(), &WordsEmbedder::default(), None)
        .err()
        .expect("no articles");
    assert!(err.to_string().contains("no help articles"), "{err}");
}

#[tokio::test]
async fn help_centre_answers_only_above_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let e = Arc::new(WordsEmbedder::default());
    let kb = Kb::load(dir.path(), e.as_ref(), None).unwrap();
    let help = HelpCentre::new(kb, Arc::clone(&e), 0.3);
    let hit = help
        .answer("how do I print the return label")
        .await
        .expect("a passage");
    assert_eq!(
        hit.answer_text(),
        format!(
            "From our help centre — Returns and refunds: {} More: \
             https://shop.example/help/returns",
            hit.passage
        )
    );
    assert!(help.answer("what is the weather in paris").await.is_none());
}

/// The best article for `q` in `help`, with its passage.
async fn best(help: &HelpCentre, q: &str) -> (String, String) {
    let hit = help.search(q, 1).await.into_iter().next().expect("a hit");
    (hit.article, hit.passage)
}

#[tokio::test]
async fn a_reload_swaps_in_new_and_edited_articles() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let (help, e) = folder_help_centre(dir.path(), 0.3);
    assert_eq!(help.kb().articles().len(), 2);
    let before = help.kb();
    let calls = e.calls.load(Ordering::SeqCst);
    // nothing changed: nothing is read again
    assert_eq!(help.reload_if_changed().await.unwrap(), None);
    assert_eq!(e.calls.load(Ordering::SeqCst), calls);

    std::fs::write(
        dir.path().join("warranty.md"),
        "# Warranty\n\nEvery product carries a 2-year guarantee against manufacturing \
         defects.\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("gift-cards.md"),
        "# Gift cards\n\nGift cards are valid for 5 years.\n",
    )
    .unwrap();
    let r = help.reload_now().await.unwrap();
    assert_eq!((r.articles, r.passages), (3, 4));
    assert_eq!(
        best(&help, "warranty guarantee defects").await.0,
        "warranty"
    );
    let (article, passage) = best(&help, "how long are gift cards valid").await;
    assert_eq!(article, "gift-cards");
    assert!(passage.contains("5 years"), "{passage}");
    // a snapshot taken before stays as it was
    assert_eq!(before.articles().len(), 2);
    assert_eq!(help.kb().articles().len(), 3);
}

#[tokio::test]
async fn a_broken_folder_keeps_the_previous_articles() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let (help, _) = folder_help_centre(dir.path(), 0.3);
    // an unreadable article (not UTF-8)
    std::fs::write(dir.path().join("returns.md"), b"# Returns\n\xff\xfe broken").unwrap();
    let err = help.reload_now().await.expect_err("an unreadable file");
    assert!(matches!(err, KbError::Read { .. }), "{err}");
    assert!(err.to_string().contains("returns.md"), "{err}");
    let (article, passage) = best(&help, "how do I print a return label").await;
    assert_eq!(article, "returns");
    assert!(passage.contains("prepaid label"), "{passage}");
    // a failed folder is not read again until it changes
    assert_eq!(help.reload_if_changed().await.unwrap(), None);

    // no articles at all
    for f in ["returns.md", "gift-cards.md"] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let err = help.reload_if_changed().await.expect_err("no articles");
    assert!(matches!(err, KbError::Empty(_)), "{err}");
    assert_eq!(help.kb().articles().len(), 2);
    assert_eq!(best(&help, "gift card balance").await.0, "gift-cards");

    // fixed: read again
    write_articles(dir.path());
    let r = help.reload_if_changed().await.unwrap().expect("a reload");
    assert_eq!(r.articles, 2);
}

#[tokio::test]
async fn the_watcher_reloads_a_changed_folder_until_the_help_centre_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let (help, _) = folder_help_centre(dir.path(), 0.3);
    let help = Arc::new(help);
    let task = help
        .watch(Duration::from_millis(50))
        .expect("a folder to watch");
    std::fs::write(
        dir.path().join("warranty.md"),
        "# Warranty\n\nEvery product carries a 2-year guarantee against manufacturing \
         defects.\n",
    )
    .unwrap();
    let started = Instant::now();
    loop {
        if best(&help, "warranty guarantee defects").await.0 == "warranty" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the new article was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(help.kb().articles().len(), 3);
    drop(help);
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the watcher ends once the help centre is dropped")
        .unwrap();
}

#[tokio::test]
async fn a_help_centre_of_fixed_articles_has_nothing_to_reload() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let e = Arc::new(WordsEmbedder::default());
    let kb = Kb::load(dir.path(), e.as_ref(), None).unwrap();
    let help = Arc::new(HelpCentre::new(kb, e, 0.3));
    assert!(matches!(help.reload_now().await, Err(KbError::Fixed)));
    assert!(help.watch(Duration::from_millis(10)).is_none());
}

fn question(q: &str, article: Option<&str>, fact: Option<&str>) -> Question {
    Question {
        question: q.into(),
        article: article.map(Into::into),
        fact: fact.map(Into::into),
    }
}

#[tokio::test]
async fn eval_answers_scores_the_llm_from_what_it_replied() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let (help, _) = folder_help_centre(dir.path(), 0.3);
    let fake = Fake::default();
    fake.then(Reply::Content(answer_json(
        "You can send it back within 30\n  Days of delivery, for free.",
        &["returns"],
        false,
    )))
    .then(Reply::Content(answer_json(
        "Gift cards stay valid for a long time.",
        &["gift-cards"],
        false,
    )))
    .then(Reply::Content(answer_json(
        "I'll pass you to a colleague who can help.",
        &[],
        true,
    )))
    .then(Reply::Content(answer_json(
        "Print the prepaid label from your orders.",
        &["shipping"],
        false,
    )))
    .then(Reply::Status(500, None));
    let config = frontdesk::config::LlmConfig {
        url: Some(fake.start().await),
        model: "fake-model".into(),
        timeout_ms: 5_000,
        max_retries: 0,
        max_concurrent: 1,
        ..frontdesk::config::LlmConfig::default()
    };
    let llm = frontdesk::llm::LlmHandle::from_config(&config)
        .unwrap()
        .expect("an LLM");
    let questions = vec![
        question(
            "how many days do I have to return an item",
            Some("returns"),
            Some("30 days"),
        ),
        question(
            "how long is a gift card valid",
            Some("gift-cards"),
            Some("3 years"),
        ),
        question("what is the weather in paris", None, None),
        question(
            "how do I print a return label",
            Some("returns"),
            Some("prepaid label"),
        ),
        question("gift card balance", Some("gift-cards"), None),
    ];
    let done = AtomicUsize::new(0);
    let r = kb_eval::evaluate_llm(&help, &llm, &questions, &|| {
        done.fetch_add(1, Ordering::SeqCst);
    })
    .await;
    assert_eq!(done.load(Ordering::SeqCst), 5);
    assert_eq!((r.questions, r.answerable, r.with_fact), (5, 4, 3));
    assert_eq!(r.model, "fake-model");
    assert_eq!(r.answered, 0.5, "2 of 4 answerable questions answered");
    assert_eq!(r.handed_off, 0.0);
    assert_eq!(r.declined, 1.0, "the one unanswerable question handed off");
    assert_eq!(r.answered_unanswerable, 0.0);
    assert_eq!(
        r.fact_in_answers, 0.5,
        "1 of the 2 answers with a fact has it"
    );
    assert!(
        (r.fact_overall - 1.0 / 3.0).abs() < 1e-9,
        "{}",
        r.fact_overall
    );
    assert_eq!(
        r.blocked
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        vec![("unknown_citation", 1)]
    );
    assert_eq!(r.errors.values().sum::<usize>(), 1, "{:?}", r.errors);
    assert_eq!(r.errors.get("server_error"), Some(&1), "{:?}", r.errors);
    // misses: the answer without its fact, the blocked one, the failed one
    let outcomes: Vec<&str> = r.misses.iter().map(|m| m.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        vec!["answered", "blocked:unknown_citation", "error:server_error"]
    );
    assert_eq!(r.misses[0].fact.as_deref(), Some("3 years"));
    // each question went out with the help centre's top passages, cited by article id
    let calls = fake.calls();
    assert_eq!(calls.len(), 5);
    let user = calls[0].1["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user.contains(r#"<passage id="returns">"#), "{user}");
    assert!(user.contains(r#"<passage id="gift-cards">"#), "{user}");
    assert!(
        user.contains("(link: https://shop.example/help/returns)"),
        "{user}"
    );
    assert!(
        user.contains("how many days do I have to return an item"),
        "{user}"
    );

    // in the report, and complete in its JSON
    let mut kb = Kb::load(dir.path(), &WordsEmbedder::default(), None).unwrap();
    let mut report =
        kb_eval::evaluate(&mut kb, &WordsEmbedder::default(), &questions, 0.3, 0.7).unwrap();
    assert!(report.llm.is_none());
    report.llm = Some(r);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["llm"]["declined"], 1.0);
    assert_eq!(json["llm"]["fact_in_answers"], 0.5);
    assert_eq!(json["llm"]["blocked"]["unknown_citation"], 1);
    assert!(json["recall_at_1"].is_number());
}

/// One turn may search for the same question twice (the LLM's passages, then the bot's own
/// answer): the encoder runs once.
#[tokio::test]
async fn the_same_question_is_embedded_once() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(dir.path());
    let e = Arc::new(WordsEmbedder::default());
    let kb = Kb::load(dir.path(), e.as_ref(), None).unwrap();
    let help = HelpCentre::new(kb, e.clone(), 0.1);
    let before = e.calls.load(Ordering::SeqCst);
    let first = help.search("how do I return an item", 3).await;
    let again = help.answer("how do I return an item").await;
    assert_eq!(e.calls.load(Ordering::SeqCst), before + 1);
    assert_eq!(
        again.as_ref().map(|h| &h.article),
        first.first().map(|h| &h.article)
    );
    help.search("gift card balance", 1).await;
    assert_eq!(e.calls.load(Ordering::SeqCst), before + 2);
    // An erase makes it forget the customers' words it held: the next search embeds again.
    assert_eq!(help.forget_questions(), 2);
    help.search("gift card balance", 1).await;
    assert_eq!(e.calls.load(Ordering::SeqCst), before + 3);
}

/// The shipped rules send a high-value customer to a person on the first turn the bot cannot
/// resolve. A question no intent covers but an article answers is no such turn: the VIP keeps
/// the instant answer, while one the help centre cannot answer still reaches a person.
#[tokio::test]
async fn a_vip_question_an_article_answers_stays_with_the_bot() {
    use crate::support::kb::demo_help_centre;
    use crate::support::server::{config, customer, serve_with_help};
    let dir = tempfile::tempdir().unwrap();
    let s = serve_with_help(config(dir.path()), demo_help_centre(0.3)).await;
    let answered = s
        .say_as(
            "vip-answered",
            &customer("V1", Some("vip"), Some(9000.0)),
            "are klarna instalments interest free",
        )
        .await;
    assert_eq!(answered["status"], "bot", "{answered}");
    let text = answered["replies"][0]["text"].as_str().unwrap_or_default();
    assert!(text.to_lowercase().contains("klarna"), "{answered}");
    let unanswerable = s
        .say_as(
            "vip-unanswered",
            &customer("V2", Some("vip"), Some(9000.0)),
            "which film should I watch tonight",
        )
        .await;
    assert_eq!(unanswerable["status"], "queued", "{unanswerable}");
    s.shutdown().await;
}
