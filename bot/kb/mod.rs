//! The help centre: Markdown articles (`kb/`) the bot quotes, with a link, when a question
//! is outside its intents. Without an LLM: hybrid retrieval of one passage.
//!
//! - `articles.rs`: reading the folder and cutting articles into passages (≤ 120 words,
//!   one section each, title and heading prefixed for embedding and keywords).
//! - `bm25.rs`: the keyword index.
//! - `cache.rs`: passage embeddings kept on disk, keyed by a hash of the articles and the
//!   encoder, so a restart does not embed them again.
//! - here: [`Kb`] (load, search) and [`HelpCentre`] (a `Kb` with the live encoder and the
//!   threshold, what the desk asks).
//!
//! A passage's score is `weight * cosine + (1 - weight) * bm25 / (bm25 + BM25_HALF)`: both
//! halves are absolute (not normalised by the best hit), so one threshold separates
//! answerable from unanswerable questions.

mod articles;
mod bm25;
mod cache;
pub mod eval;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::nlu::{Nlu, NluError, NluService};
pub use articles::{Article, Passage, MAX_WORDS};

/// Share of the cosine in a passage's score (the rest is keywords), chosen on
/// `data/kb/val.jsonl` with `frontdesk eval answers`.
pub const DEFAULT_WEIGHT: f32 = 0.7;
/// A BM25 score that counts as half a keyword match.
pub const BM25_HALF: f32 = 8.0;
/// Where an article's link points: `{HELP_URL}/{id}`.
pub const HELP_URL: &str = "https://shop.example/help";

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("cannot read the help centre at {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no help articles (*.md with a `# Title` line) in {0}: set kb.dir or kb.enabled = false"
    )]
    Empty(PathBuf),
    #[error("embedding the help articles failed: {0}")]
    Embed(#[source] NluError),
}

/// Sentence embeddings, L2-normalised, in input order (the encoder, or a fake in tests).
pub trait Embedder: Send + Sync {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError>;
    /// Names the model, so cached embeddings of another one are never reused.
    fn model(&self) -> String;
}

impl Embedder for Nlu {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError> {
        Nlu::embed(self, texts)
    }
    fn model(&self) -> String {
        // the width and a probe vector identify the encoder well enough
        let probe = Nlu::embed(self, &["help centre"]).unwrap_or_default();
        let head: Vec<String> = probe
            .first()
            .map(|v| v.iter().take(8).map(|x| format!("{x:.4}")).collect())
            .unwrap_or_default();
        format!("{}:{}", probe.first().map_or(0, Vec::len), head.join(","))
    }
}

/// A question's embedding, computed off the caller's task (the NLU worker in the product).
pub trait QueryEmbedder: Send + Sync + 'static {
    fn embed_query(&self, text: String) -> BoxFuture<'static, Result<Vec<f32>, NluError>>;
}

impl QueryEmbedder for NluService {
    fn embed_query(&self, text: String) -> BoxFuture<'static, Result<Vec<f32>, NluError>> {
        let service = self.clone();
        Box::pin(async move {
            let mut v = service.embed(&[text.as_str()]).await?;
            v.pop().ok_or(NluError::Stopped)
        })
    }
}

impl<E: Embedder + 'static> QueryEmbedder for Arc<E> {
    fn embed_query(&self, text: String) -> BoxFuture<'static, Result<Vec<f32>, NluError>> {
        let e = Arc::clone(self);
        Box::pin(async move {
            let mut v = e.embed(&[text.as_str()])?;
            v.pop().ok_or(NluError::Stopped)
        })
    }
}

/// One passage found for a question.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub article: String,
    pub title: String,
    pub url: String,
    /// The section heading ("" for the article's opening paragraph).
    pub section: String,
    pub passage: String,
    pub score: f32,
}

impl Hit {
    /// What the bot says when it answers with this passage.
    pub fn answer_text(&self) -> String {
        format!(
            "From our help centre — {}: {} More: {}",
            self.title, self.passage, self.url
        )
    }
}

/// The articles, their passages, the passages' embeddings and keyword index.
pub struct Kb {
    articles: Vec<Article>,
    passages: Vec<Passage>,
    vectors: Vec<Vec<f32>>,
    keywords: bm25::Bm25,
    weight: f32,
}

impl Kb {
    /// Loads every article of `dir` and embeds its passages, reusing the embeddings cached
    /// under `cache_dir` when neither the articles nor the model changed.
    pub fn load(
        dir: &Path,
        embedder: &dyn Embedder,
        cache_dir: Option<&Path>,
    ) -> Result<Kb, KbError> {
        let files = articles::load_dir(dir)?;
        let key = cache::key(
            files.iter().map(|(a, text)| (a.id.as_str(), text.as_str())),
            &embedder.model(),
        );
        let articles: Vec<Article> = files.into_iter().map(|(a, _)| a).collect();
        let passages: Vec<Passage> = articles
            .iter()
            .enumerate()
            .flat_map(|(i, a)| a.passages(i))
            .collect();
        let docs: Vec<String> = passages
            .iter()
            .map(|p| indexed_text(&articles, p))
            .collect();
        let cached = cache_dir.and_then(|c| cache::read(c, &key, passages.len()));
        let vectors = match cached {
            Some(v) => v,
            None => {
                let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
                let mut vectors = Vec::with_capacity(refs.len());
                for batch in refs.chunks(16) {
                    vectors.extend(embedder.embed(batch).map_err(KbError::Embed)?);
                }
                if let Some(c) = cache_dir {
                    cache::write(c, &key, &vectors);
                }
                vectors
            }
        };
        let keywords = bm25::Bm25::new(docs.iter().map(String::as_str));
        tracing::info!(articles = articles.len(), passages = passages.len(), dir = %dir.display(), "help centre loaded");
        Ok(Kb {
            articles,
            passages,
            vectors,
            keywords,
            weight: DEFAULT_WEIGHT,
        })
    }

    /// The same help centre with another share of the cosine in the score (for `eval`).
    pub fn set_weight(&mut self, weight: f32) {
        self.weight = weight.clamp(0.0, 1.0);
    }

    pub fn articles(&self) -> &[Article] {
        &self.articles
    }

    pub fn passage_count(&self) -> usize {
        self.passages.len()
    }

    /// The best passage of each of the `k` best articles for `question`, whose embedding is
    /// `query`; best first.
    pub fn search(&self, question: &str, query: &[f32], k: usize) -> Vec<Hit> {
        let keywords = self.keywords.scores(question);
        let mut best: Vec<Option<(f32, usize)>> = vec![None; self.articles.len()];
        for (i, p) in self.passages.iter().enumerate() {
            let cosine: f32 = self.vectors[i].iter().zip(query).map(|(a, b)| a * b).sum();
            let kw = keywords[i] / (keywords[i] + BM25_HALF);
            let score = self.weight * cosine + (1.0 - self.weight) * kw;
            let slot = &mut best[p.article];
            if slot.is_none_or(|(s, _)| score > s) {
                *slot = Some((score, i));
            }
        }
        let mut ranked: Vec<(f32, usize)> = best.into_iter().flatten().collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked
            .into_iter()
            .take(k)
            .map(|(score, i)| {
                let p = &self.passages[i];
                let a = &self.articles[p.article];
                Hit {
                    article: a.id.clone(),
                    title: a.title.clone(),
                    url: format!("{HELP_URL}/{}", a.id),
                    section: p.section.clone(),
                    passage: p.text.clone(),
                    score,
                }
            })
            .collect()
    }
}

/// What is embedded and indexed for a passage: article title and section heading first, so
/// a passage that never names its subject still matches it.
fn indexed_text(articles: &[Article], p: &Passage) -> String {
    let title = &articles[p.article].title;
    if p.section.is_empty() {
        format!("{title}. {}", p.text)
    } else {
        format!("{title} — {}. {}", p.section, p.text)
    }
}

/// A help centre the desk can ask: the articles, the live encoder and the least score
/// worth answering with.
pub struct HelpCentre {
    kb: Kb,
    embedder: Box<dyn QueryEmbedder>,
    min_score: f32,
}

impl HelpCentre {
    pub fn new(kb: Kb, embedder: impl QueryEmbedder, min_score: f32) -> HelpCentre {
        HelpCentre {
            kb,
            embedder: Box::new(embedder),
            min_score,
        }
    }

    pub fn kb(&self) -> &Kb {
        &self.kb
    }

    /// The best passage for `question` when it scores at least the threshold.
    pub async fn answer(&self, question: &str) -> Option<Hit> {
        let query = match self.embedder.embed_query(question.to_string()).await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = %e, "embedding a question for the help centre failed");
                return None;
            }
        };
        let hit = self.kb.search(question, &query, 1).into_iter().next()?;
        tracing::debug!(article = %hit.article, score = hit.score, "help centre best passage");
        (hit.score >= self.min_score).then_some(hit)
    }
}
