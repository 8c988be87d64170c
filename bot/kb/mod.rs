//! The help centre: Markdown articles (`kb/`) the bot quotes, with a link, when a question
//! is outside its intents. Without an LLM: hybrid retrieval of one passage.
//!
//! - `articles.rs`: reading the folder and cutting articles into passages (≤ 120 words,
//!   one section each, title and heading prefixed for embedding and keywords).
//! - `bm25.rs`: the keyword index.
//! - `cache.rs`: passage embeddings kept on disk, keyed by a hash of the articles and the
//!   encoder, so a restart does not embed them again.
//! - `recent.rs`: the last questions' embeddings (cleared by an erase).
//! - here: [`Kb`] (load, search) and [`HelpCentre`] (a `Kb` with the live encoder and the
//!   threshold, what the desk asks; it reads its folder again when the articles change,
//!   swapping the new `Kb` in whole and keeping the old one when the folder is broken).
//!
//! A passage's score is `weight * cosine + (1 - weight) * bm25 / (bm25 + BM25_HALF)`: both
//! halves are absolute (not normalised by the best hit), so one threshold separates
//! answerable from unanswerable questions.

pub mod articles;
mod bm25;
mod cache;
mod embedder;
pub use embedder::{Embedder, QueryEmbedder};
pub mod eval;
mod recent;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::nlu::NluError;
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
    #[error("this help centre was built from articles in memory, not a folder: nothing to reload")]
    Fixed,
    #[error("loading the help centre panicked: {0}")]
    Panicked(String),
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

/// How often [`HelpCentre::watch`] looks at the folder in the product.
pub const WATCH_EVERY: Duration = Duration::from_secs(3);

/// What one reload of the help centre found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reloaded {
    pub articles: usize,
    pub passages: usize,
    /// Reading, cutting and embedding (the cached embeddings are reused when nothing
    /// changed).
    pub took: Duration,
}

/// Where a help centre's articles come from, so it can read them again.
struct Source {
    dir: PathBuf,
    cache_dir: Option<PathBuf>,
    embedder: Arc<dyn Embedder>,
    /// The folder's fingerprint when it was last read (loaded or refused); held for the
    /// whole of a reload, so two never overlap.
    seen: tokio::sync::Mutex<u64>,
}

/// A help centre the desk can ask: the articles, the live encoder and the least score
/// worth answering with. Built from a folder ([`HelpCentre::load`]), it can read the
/// folder again ([`HelpCentre::reload_now`], [`HelpCentre::watch`]): the new articles are
/// swapped in whole, a question in flight finishes on the ones it started with, and a
/// folder that cannot be read leaves the previous articles in use.
pub struct HelpCentre {
    kb: RwLock<Arc<Kb>>,
    embedder: Box<dyn QueryEmbedder>,
    /// The last questions' embeddings (`recent.rs`).
    recent: recent::RecentQuestions,
    min_score: f32,
    source: Option<Source>,
}

impl HelpCentre {
    /// A help centre of fixed articles (nothing to reload).
    pub fn new(kb: Kb, embedder: impl QueryEmbedder, min_score: f32) -> HelpCentre {
        HelpCentre {
            kb: RwLock::new(Arc::new(kb)),
            embedder: Box::new(embedder),
            recent: Default::default(),
            min_score,
            source: None,
        }
    }

    /// Loads the articles of `dir` (blocking: call it off the async threads) with
    /// `embedder` for the passages (and again on each reload) and `query` for questions.
    pub fn load(
        dir: impl Into<PathBuf>,
        cache_dir: Option<PathBuf>,
        embedder: Arc<dyn Embedder>,
        query: impl QueryEmbedder,
        min_score: f32,
    ) -> Result<HelpCentre, KbError> {
        let dir = dir.into();
        let seen = fingerprint(&dir);
        let kb = Kb::load(&dir, embedder.as_ref(), cache_dir.as_deref())?;
        Ok(HelpCentre {
            kb: RwLock::new(Arc::new(kb)),
            embedder: Box::new(query),
            recent: Default::default(),
            min_score,
            source: Some(Source {
                dir,
                cache_dir,
                embedder,
                seen: tokio::sync::Mutex::new(seen),
            }),
        })
    }

    /// The articles in use now (a later reload does not change this snapshot).
    pub fn kb(&self) -> Arc<Kb> {
        Arc::clone(&self.kb.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The folder the articles are read from (`None`: fixed articles).
    pub fn dir(&self) -> Option<&Path> {
        self.source.as_ref().map(|s| s.dir.as_path())
    }

    /// The least score of a passage the bot answers with on its own.
    pub fn min_score(&self) -> f32 {
        self.min_score
    }

    /// The best passage for `question` when it scores at least the threshold.
    pub async fn answer(&self, question: &str) -> Option<Hit> {
        let hit = self.search(question, 1).await.into_iter().next()?;
        tracing::debug!(article = %hit.article, score = hit.score, "help centre best passage");
        (hit.score >= self.min_score).then_some(hit)
    }

    /// The best passages of the `k` best articles for `question`, whatever their score
    /// (none when the question cannot be embedded).
    pub async fn search(&self, question: &str, k: usize) -> Vec<Hit> {
        match self.embed(question).await {
            Ok(query) => self.kb().search(question, &query, k),
            Err(e) => {
                tracing::warn!(error = %e, "embedding a question for the help centre failed");
                Vec::new()
            }
        }
    }

    /// The question's embedding: remembered when it was asked a moment ago, else computed.
    async fn embed(&self, question: &str) -> Result<Vec<f32>, NluError> {
        if let Some(v) = self.recent.get(question) {
            return Ok(v);
        }
        let v = self.embedder.embed_query(question.to_string()).await?;
        self.recent.remember(question, &v);
        Ok(v)
    }

    /// Sentence embeddings of `texts` by the help centre's encoder, in input order, not
    /// remembered: the cockpit's unanswered inbox groups customers' messages by them. Up to
    /// 32 texts wait on the encoder at once (the NLU worker batches them).
    pub async fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, NluError> {
        use futures::StreamExt as _;
        let vectors: Vec<Result<Vec<f32>, NluError>> = futures::stream::iter(texts.to_vec())
            .map(|t| self.embedder.embed_query(t))
            .buffered(32)
            .collect()
            .await;
        vectors.into_iter().collect()
    }

    /// Forgets the remembered questions (customers' own words): called when a customer's
    /// data is erased. Returns how many were held.
    pub fn forget_questions(&self) -> usize {
        self.recent.forget()
    }

    /// Reads the folder again now, changed or not, and swaps the new articles in. On an
    /// error (no articles, an unreadable file) the previous articles stay in use and the
    /// error is logged with what to fix.
    pub async fn reload_now(&self) -> Result<Reloaded, KbError> {
        self.reload(true)
            .await
            .map(|r| r.expect("a forced reload always reads the folder"))
    }

    /// Reads the folder again when its `*.md` files changed (names, sizes, modification
    /// times) since it was last read; `Ok(None)` when nothing changed. A folder that failed
    /// is not read again until it changes, so its error is logged once per change.
    pub async fn reload_if_changed(&self) -> Result<Option<Reloaded>, KbError> {
        self.reload(false).await
    }

    async fn reload(&self, force: bool) -> Result<Option<Reloaded>, KbError> {
        let source = self.source.as_ref().ok_or(KbError::Fixed)?;
        let mut seen = source.seen.lock().await;
        let dir = source.dir.clone();
        let cache_dir = source.cache_dir.clone();
        let embedder = Arc::clone(&source.embedder);
        let last = *seen;
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            let now = fingerprint(&dir);
            if !force && now == last {
                return (now, None);
            }
            (
                now,
                Some(Kb::load(&dir, embedder.as_ref(), cache_dir.as_deref())),
            )
        });
        let (now, loaded) = match task.await {
            Ok(r) => r,
            Err(e) => {
                let e = KbError::Panicked(e.to_string());
                tracing::error!(dir = %source.dir.display(), error = %e, "help centre not reloaded; the previous articles stay in use");
                return Err(e);
            }
        };
        *seen = now;
        let Some(loaded) = loaded else {
            return Ok(None);
        };
        match loaded {
            Ok(mut kb) => {
                let old = self.kb();
                kb.set_weight(old.weight);
                let reloaded = Reloaded {
                    articles: kb.articles().len(),
                    passages: kb.passage_count(),
                    took: started.elapsed(),
                };
                *self.kb.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(kb);
                tracing::info!(
                    dir = %source.dir.display(),
                    articles = reloaded.articles,
                    passages = reloaded.passages,
                    was_articles = old.articles().len(),
                    was_passages = old.passage_count(),
                    took_ms = reloaded.took.as_millis() as u64,
                    "help centre reloaded"
                );
                Ok(Some(reloaded))
            }
            Err(e) => {
                tracing::error!(
                    dir = %source.dir.display(),
                    error = %e,
                    "help centre NOT reloaded: the previous {} articles stay in use. Fix the \
                     folder: every *.md file readable UTF-8 with a `# Title` line, at least \
                     one article; it is read again as soon as it changes",
                    self.kb().articles().len()
                );
                Err(e)
            }
        }
    }

    /// Looks at the folder every `every` and reloads it when it changed, until this help
    /// centre is dropped (the task holds it only while it reloads). `None` for fixed
    /// articles. Needs a Tokio runtime.
    pub fn watch(self: &Arc<Self>, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        let dir = self.dir()?.to_path_buf();
        let help = Arc::downgrade(self);
        tracing::debug!(dir = %dir.display(), every_ms = every.as_millis() as u64, "watching the help centre's folder");
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(help) = help.upgrade() else {
                    tracing::debug!(dir = %dir.display(), "help centre dropped: no longer watching its folder");
                    return;
                };
                // errors are logged by the reload, with what to fix
                let _ = help.reload_if_changed().await;
            }
        }))
    }
}

/// The names, sizes and modification times of the `*.md` files of `dir`, hashed (an
/// unreadable folder hashes its error, so it counts as a change once).
pub fn fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut files: Vec<(std::ffi::OsString, u64, Option<std::time::SystemTime>)> = entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
                .map(|e| {
                    let meta = e.metadata().ok();
                    (
                        e.file_name(),
                        meta.as_ref().map_or(u64::MAX, |m| m.len()),
                        meta.and_then(|m| m.modified().ok()),
                    )
                })
                .collect();
            files.sort();
            files.hash(&mut h);
        }
        Err(e) => format!("unreadable: {}", e.kind()).hash(&mut h),
    }
    h.finish()
}
