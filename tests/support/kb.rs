//! A help centre without the model: the hashed-words embedder and the demo articles.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use frontdesk::kb::{Embedder, HelpCentre, Kb};
use frontdesk::nlu::NluError;

/// Hashed bag of words, L2-normalised: enough to tell apart articles about different things.
#[derive(Default)]
pub struct WordsEmbedder {
    pub calls: AtomicUsize,
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

/// The shipped help centre (`kb/`) on the hashed-words embedder, answering on its own
/// from `min_score`.
pub fn demo_help_centre(min_score: f32) -> Arc<HelpCentre> {
    let embedder = Arc::new(WordsEmbedder::default());
    let kb = Kb::load(&super::repo("kb"), embedder.as_ref(), None).expect("the demo kb loads");
    Arc::new(HelpCentre::new(kb, embedder, min_score))
}

/// A help centre read from `dir` on the hashed-words embedder (reloadable), and the
/// embedder (its `calls` count every text embedded).
pub fn folder_help_centre(
    dir: &std::path::Path,
    min_score: f32,
) -> (HelpCentre, Arc<WordsEmbedder>) {
    let embedder = Arc::new(WordsEmbedder::default());
    let help = HelpCentre::load(
        dir,
        None,
        embedder.clone(),
        Arc::clone(&embedder),
        min_score,
    )
    .expect("the help centre loads");
    (help, embedder)
}
