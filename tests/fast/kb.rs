//! The help centre without a model: articles read from a folder, passages found by a fake
//! embedder (hashed words) and BM25, the cache of embeddings, and a desk that answers an
//! out-of-scope question with the passage and its link.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use frontdesk::kb::{Embedder, HelpCentre, Kb};
use frontdesk::nlu::NluError;

/// Hashed bag of words, L2-normalised: enough to tell apart articles about different things.
#[derive(Default)]
struct WordsEmbedder {
    calls: AtomicUsize,
}

impl Embedder for WordsEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError> {
        self.calls.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 64];
                for w in t
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() > 2)
                {
                    let h = w
                        .to_lowercase()
                        .bytes()
                        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
                    v[h as usize % 64] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / n).collect()
            })
            .collect())
    }
    fn model(&self) -> String {
        "words-64".into()
    }
}

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
