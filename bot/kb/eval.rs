//! `frontdesk eval answers`: how well the help centre finds the article a question is
//! about, and how often it rightly stays silent.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Embedder, Kb, KbError};

/// One labelled question: `article` is the id that answers it, or null when none does.
#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub question: String,
    pub article: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {source}")]
    Line {
        path: std::path::PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}:{line}: no article `{article}` in the help centre")]
    UnknownArticle {
        path: std::path::PathBuf,
        line: usize,
        article: String,
    },
    #[error(transparent)]
    Kb(#[from] KbError),
}

pub fn read_questions(path: &Path, kb: &Kb) -> Result<Vec<Question>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let q: Question = serde_json::from_str(line).map_err(|source| EvalError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        if let Some(a) = &q.article {
            if !kb.articles().iter().any(|x| &x.id == a) {
                return Err(EvalError::UnknownArticle {
                    path: path.to_path_buf(),
                    line: i + 1,
                    article: a.clone(),
                });
            }
        }
        out.push(q);
    }
    Ok(out)
}

/// Scores at one weight of the cosine.
#[derive(Debug, Clone, Serialize)]
pub struct AtWeight {
    pub weight: f32,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    /// Share of answerable questions whose best hit reaches `min_score`.
    pub answered: f64,
    /// Share of answered answerable questions whose best hit is the right article.
    pub answered_correct: f64,
    /// Share of unanswerable questions whose best hit stays below `min_score`.
    pub declined: f64,
}

/// A miss at the chosen weight.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub question: String,
    pub expected: Option<String>,
    pub got: String,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswersReport {
    pub questions: usize,
    pub answerable: usize,
    pub passages: usize,
    pub min_score: f32,
    pub weight: f32,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub answered: f64,
    pub answered_correct: f64,
    pub declined: f64,
    /// Median time of the search itself (BM25 + cosine over every passage), per question.
    pub retrieval_p50_ms: f64,
    /// Median time of embedding one question with the encoder, in the same run.
    pub encoder_p50_ms: f64,
    /// Every weight tried, 0 (keywords only) to 1 (cosine only).
    pub weights: Vec<AtWeight>,
    pub misses: Vec<Miss>,
}

/// Runs every question through `kb` (embedded one at a time, as the desk does) at the
/// weights 0, 0.1, ... 1 and reports `weight` in full.
pub fn evaluate(
    kb: &mut Kb,
    embedder: &dyn Embedder,
    questions: &[Question],
    min_score: f32,
    weight: f32,
) -> Result<AnswersReport, EvalError> {
    let mut vectors = Vec::with_capacity(questions.len());
    let mut encoder_ms = Vec::new();
    for q in questions {
        let t = Instant::now();
        let v = embedder
            .embed(&[q.question.as_str()])
            .map_err(KbError::Embed)?;
        encoder_ms.push(t.elapsed().as_secs_f64() * 1e3);
        vectors.push(v.into_iter().next().unwrap_or_default());
    }
    let mut weights: Vec<f32> = (0..=10).map(|i| i as f32 / 10.0).collect();
    if !weights.iter().any(|w| (w - weight).abs() < 1e-6) {
        weights.push(weight);
    }
    let mut rows = Vec::new();
    let mut retrieval_ms = Vec::new();
    let mut misses = Vec::new();
    let mut chosen = None;
    for &w in &weights {
        kb.set_weight(w);
        let is_chosen = (w - weight).abs() < 1e-6;
        let (mut r1, mut r3, mut answered, mut correct, mut declined) = (0, 0, 0, 0, 0);
        for (q, v) in questions.iter().zip(&vectors) {
            let t = Instant::now();
            let hits = kb.search(&q.question, v, 3);
            if is_chosen {
                retrieval_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let best = hits.first();
            let confident = best.is_some_and(|h| h.score >= min_score);
            match &q.article {
                Some(a) => {
                    let top = best.is_some_and(|h| &h.article == a);
                    r1 += top as usize;
                    r3 += hits.iter().any(|h| &h.article == a) as usize;
                    answered += confident as usize;
                    correct += (confident && top) as usize;
                    if is_chosen && (!top || !confident) {
                        misses.push(miss(q, best));
                    }
                }
                None => {
                    declined += (!confident) as usize;
                    if is_chosen && confident {
                        misses.push(miss(q, best));
                    }
                }
            }
        }
        let answerable = questions.iter().filter(|q| q.article.is_some()).count();
        let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        let row = AtWeight {
            weight: w,
            recall_at_1: share(r1, answerable),
            recall_at_3: share(r3, answerable),
            answered: share(answered, answerable),
            answered_correct: share(correct, answered),
            declined: share(declined, questions.len() - answerable),
        };
        if is_chosen {
            chosen = Some(row.clone());
        }
        rows.push(row);
    }
    kb.set_weight(weight);
    let c = chosen.expect("the chosen weight is among those tried");
    Ok(AnswersReport {
        questions: questions.len(),
        answerable: questions.iter().filter(|q| q.article.is_some()).count(),
        passages: kb.passage_count(),
        min_score,
        weight,
        recall_at_1: c.recall_at_1,
        recall_at_3: c.recall_at_3,
        answered: c.answered,
        answered_correct: c.answered_correct,
        declined: c.declined,
        retrieval_p50_ms: median(&mut retrieval_ms),
        encoder_p50_ms: median(&mut encoder_ms),
        weights: rows,
        misses,
    })
}

fn miss(q: &Question, best: Option<&super::Hit>) -> Miss {
    Miss {
        question: q.question.clone(),
        expected: q.article.clone(),
        got: best.map_or(String::new(), |h| h.article.clone()),
        score: best.map_or(0.0, |h| h.score),
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
