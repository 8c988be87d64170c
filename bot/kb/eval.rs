//! `frontdesk eval answers`: how well the help centre finds the article a question is
//! about, and how often it rightly stays silent; with an LLM, how the answer task does on
//! the same questions ([`evaluate_llm`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Embedder, HelpCentre, Kb, KbError};
use crate::desk::grounding::{Grounding, PASSAGES};
use crate::llm::{AnswerInput, CustomerFacts, LlmError, LlmHandle};

/// One labelled question: `article` is the id that answers it, or null when none does;
/// `fact` a short phrase a right answer contains ("30 days"), when there is one.
#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub question: String,
    pub article: Option<String>,
    #[serde(default)]
    pub fact: Option<String>,
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
    /// The answer task on the same questions; `None` without `[llm]`.
    pub llm: Option<LlmReport>,
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
        llm: None,
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

/// The answer task (the real prompts, client and guardrails) on the labelled questions,
/// each given the help centre's best passages as the desk gives them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LlmReport {
    /// The model named in `llm.model`.
    pub model: String,
    pub questions: usize,
    pub answerable: usize,
    /// Share of answerable questions the model answered (an answer that passed every
    /// guardrail, no hand-off).
    pub answered: f64,
    /// Share of answerable questions it handed to a person.
    pub handed_off: f64,
    /// Share of unanswerable questions it rightly handed to a person.
    pub declined: f64,
    /// Share of unanswerable questions it answered anyway.
    pub answered_unanswerable: f64,
    /// Questions whose best passage scores below `llm.min_passage_score`: the desk does not
    /// ask the model about them (they were asked here all the same).
    pub below_min_passage_score: usize,
    /// Share of unanswerable questions declined as the desk would: below
    /// `llm.min_passage_score`, or handed off by the model.
    pub declined_with_gate: f64,
    /// Answers the guardrails refused, by reason.
    pub blocked: BTreeMap<String, usize>,
    /// Calls that failed otherwise (timeouts, HTTP errors, malformed replies), by reason.
    pub errors: BTreeMap<String, usize>,
    /// Answerable questions with an expected key fact.
    pub with_fact: usize,
    /// Of those the model answered, the share whose answer contains the fact (case and
    /// spacing ignored).
    pub fact_in_answers: f64,
    /// Of all the questions with a key fact, the share answered with it.
    pub fact_overall: f64,
    /// Median time of one answer call.
    pub p50_ms: f64,
    /// Answerable questions not answered or answered without their fact, unanswerable
    /// questions answered.
    pub misses: Vec<LlmMiss>,
}

/// One question the answer task got wrong.
#[derive(Debug, Clone, Serialize)]
pub struct LlmMiss {
    pub question: String,
    pub expected: Option<String>,
    pub fact: Option<String>,
    /// `answered`, `handoff`, `blocked:<reason>` or `error:<reason>`.
    pub outcome: String,
    pub answer: Option<String>,
    pub cited: Vec<String>,
    /// The articles of the passages the model was given, best first.
    pub passages: Vec<String>,
}

/// What the answer task made of one question.
enum Outcome {
    Answered { text: String, cited: Vec<String> },
    Handoff { text: String, cited: Vec<String> },
    Blocked(&'static str),
    Failed(&'static str),
}

/// Whether `answer` contains `fact`, case and runs of whitespace ignored (a dash counts as a
/// space, so "2-year" contains "2 year").
pub fn contains_fact(answer: &str, fact: &str) -> bool {
    let norm = |t: &str| {
        t.replace(['-', '\u{2013}', '\u{2014}'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let fact = norm(fact);
    !fact.is_empty() && norm(answer).contains(&fact)
}

/// Asks the answer task every question (one conversation each, nothing else known about the
/// customer), with the top [`PASSAGES`] passages of `help` as the desk builds them, at most
/// `llm.max_concurrent` at once; `done` is called after each question.
pub async fn evaluate_llm(
    help: &HelpCentre,
    llm: &LlmHandle,
    questions: &[Question],
    done: &(dyn Fn() + Sync),
) -> LlmReport {
    let config = llm.llm.config();
    let parallel = config.max_concurrent.max(1);
    let gate = config.min_passage_score;
    let results: Vec<(Outcome, f32, Vec<String>, f64)> =
        futures::stream::iter(questions.iter().enumerate())
            .map(|(i, q)| async move {
                let grounding = Grounding {
                    customer_message: q.question.clone(),
                    hits: help.search(&q.question, PASSAGES).await,
                    ..Grounding::default()
                };
                let passages = grounding.passages();
                let conversation = format!("eval-answers-{i}");
                let customer = CustomerFacts::default();
                let started = Instant::now();
                let result = llm
                    .llm
                    .answer(
                        &llm.prompts,
                        AnswerInput {
                            conversation_id: &conversation,
                            history: &[],
                            customer_message: &q.question,
                            customer: &customer,
                            shop_data: &grounding.shop_data,
                            passages: &passages,
                        },
                    )
                    .await;
                let ms = started.elapsed().as_secs_f64() * 1e3;
                let outcome = match result {
                    Ok(a) if a.handoff => Outcome::Handoff {
                        text: a.text,
                        cited: a.cited,
                    },
                    Ok(a) => Outcome::Answered {
                        text: a.text,
                        cited: a.cited,
                    },
                    Err(e @ LlmError::Blocked(_)) => Outcome::Blocked(e.reason()),
                    Err(e) => Outcome::Failed(e.reason()),
                };
                done();
                let ids = grounding.hits.iter().map(|h| h.article.clone()).collect();
                (outcome, grounding.best_score(), ids, ms)
            })
            .buffered(parallel)
            .collect()
            .await;

    let mut r = LlmReport {
        model: config.model.clone(),
        questions: questions.len(),
        answerable: questions.iter().filter(|q| q.article.is_some()).count(),
        ..LlmReport::default()
    };
    let (mut answered, mut handed_off, mut declined, mut wrongly_answered) = (0, 0, 0, 0);
    let (mut declined_with_gate, mut fact_answered, mut fact_found) = (0, 0, 0);
    let mut ms = Vec::with_capacity(results.len());
    for (q, (outcome, best, passages, took)) in questions.iter().zip(results) {
        ms.push(took);
        let below_gate = best < gate;
        r.below_min_passage_score += below_gate as usize;
        let fact = q.fact.as_deref().filter(|f| !f.trim().is_empty());
        let answerable = q.article.is_some();
        if answerable && fact.is_some() {
            r.with_fact += 1;
        }
        let mut wrong = false;
        let (name, answer, cited) = match outcome {
            Outcome::Answered { text, cited } => {
                if answerable {
                    answered += 1;
                    if let Some(f) = fact {
                        fact_answered += 1;
                        if contains_fact(&text, f) {
                            fact_found += 1;
                        } else {
                            wrong = true;
                        }
                    }
                } else {
                    wrongly_answered += 1;
                    declined_with_gate += below_gate as usize;
                    wrong = true;
                }
                ("answered".to_string(), Some(text), cited)
            }
            Outcome::Handoff { text, cited } => {
                if answerable {
                    handed_off += 1;
                    wrong = true;
                } else {
                    declined += 1;
                    declined_with_gate += 1;
                }
                ("handoff".to_string(), Some(text), cited)
            }
            Outcome::Blocked(reason) => {
                *r.blocked.entry(reason.to_string()).or_default() += 1;
                wrong = answerable;
                declined_with_gate += (!answerable && below_gate) as usize;
                (format!("blocked:{reason}"), None, Vec::new())
            }
            Outcome::Failed(reason) => {
                *r.errors.entry(reason.to_string()).or_default() += 1;
                wrong = answerable;
                declined_with_gate += (!answerable && below_gate) as usize;
                (format!("error:{reason}"), None, Vec::new())
            }
        };
        if wrong {
            r.misses.push(LlmMiss {
                question: q.question.clone(),
                expected: q.article.clone(),
                fact: fact.map(str::to_string),
                outcome: name,
                answer,
                cited,
                passages,
            });
        }
    }
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let unanswerable = r.questions - r.answerable;
    r.answered = share(answered, r.answerable);
    r.handed_off = share(handed_off, r.answerable);
    r.declined = share(declined, unanswerable);
    r.answered_unanswerable = share(wrongly_answered, unanswerable);
    r.declined_with_gate = share(declined_with_gate, unanswerable);
    r.fact_in_answers = share(fact_found, fact_answered);
    r.fact_overall = share(fact_found, r.with_fact);
    r.p50_ms = median(&mut ms);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_found_whatever_the_case_and_spacing() {
        assert!(contains_fact(
            "Returns are free within 30\n  DAYS.",
            "30 days"
        ));
        assert!(contains_fact("Shipping costs 6.95 EUR.", " 6.95  eur "));
        assert!(!contains_fact(
            "Returns are free within 14 days.",
            "30 days"
        ));
        assert!(contains_fact("Frames carry a 5-year guarantee.", "5 year"));
        assert!(!contains_fact("anything", "  "));
    }

    #[test]
    fn a_fact_is_optional_in_the_questions_file() {
        let q: Question = serde_json::from_str(r#"{"question": "q", "article": null}"#).unwrap();
        assert!(q.fact.is_none());
        let q: Question =
            serde_json::from_str(r#"{"question": "q", "article": "a", "fact": "30 days"}"#)
                .unwrap();
        assert_eq!(q.fact.as_deref(), Some("30 days"));
    }
}
