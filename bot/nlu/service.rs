//! `NluService`: many async callers, one batching worker thread that owns the encoder.
//! Whatever is waiting when the worker comes round (up to `max_batch`) goes through the
//! encoder in one pass; callers await a oneshot. The queue is bounded, so a flood of
//! messages makes callers wait instead of growing memory. Queue time and inference time are
//! recorded separately (`nlu_queue_seconds`, `nlu_inference_seconds`, `nlu_batch_size`,
//! `nlu_messages_total`).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::{Analysis, Nlu, NluError};

/// Batching and queue limits.
#[derive(Debug, Clone, Copy)]
pub struct ServiceOptions {
    /// Most messages in one encoder pass.
    pub max_batch: usize,
    /// Most messages waiting; further callers wait for room.
    pub queue_capacity: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            max_batch: 32,
            queue_capacity: 1024,
        }
    }
}

struct Job {
    text: String,
    enqueued: Instant,
    reply: Reply,
}

/// What a caller waits for: the full analysis, or only the sentence embedding.
enum Reply {
    Analysis(oneshot::Sender<Result<Analysis, NluError>>),
    Embedding(oneshot::Sender<Result<Vec<f32>, NluError>>),
}

/// Handle to the NLU worker; cheap to clone. The worker stops when the last handle is dropped.
#[derive(Clone)]
pub struct NluService {
    jobs: mpsc::Sender<Job>,
    nlu: Arc<Nlu>,
}

impl NluService {
    /// Start the worker thread.
    pub fn start(nlu: Nlu, opts: ServiceOptions) -> NluService {
        let nlu = Arc::new(nlu);
        let (tx, rx) = mpsc::channel(opts.queue_capacity.max(1));
        let worker = Arc::clone(&nlu);
        let max_batch = opts.max_batch.max(1);
        std::thread::Builder::new()
            .name("nlu-worker".into())
            .spawn(move || run_worker(&worker, rx, max_batch))
            .expect("spawn the NLU worker thread");
        NluService { jobs: tx, nlu }
    }

    /// Understand one message. Waits for room when the queue is full.
    pub async fn analyze(&self, text: String) -> Result<Analysis, NluError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            text,
            enqueued: Instant::now(),
            reply: Reply::Analysis(reply),
        };
        self.jobs.send(job).await.map_err(|_| NluError::Stopped)?;
        answer.await.map_err(|_| NluError::Stopped)?
    }

    /// Sentence embeddings of `texts` ([`Nlu::embed`]), computed on the worker in the same
    /// batches as the analyses; results in input order.
    pub async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError> {
        let mut answers = Vec::with_capacity(texts.len());
        for &text in texts {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                text: text.to_string(),
                enqueued: Instant::now(),
                reply: Reply::Embedding(reply),
            };
            self.jobs.send(job).await.map_err(|_| NluError::Stopped)?;
            answers.push(answer);
        }
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            out.push(answer.await.map_err(|_| NluError::Stopped)??);
        }
        Ok(out)
    }

    /// Puts a new set of intents in force ([`Nlu::reload_intents`]) on a thread of its own:
    /// the worker keeps answering with the head in force until the new one is ready.
    pub async fn reload_intents(&self, set: crate::IntentSet) -> Result<(), NluError> {
        let nlu = Arc::clone(&self.nlu);
        let (done, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("nlu-intents".into())
            .spawn(move || {
                let _ = done.send(nlu.reload_intents(set));
            })
            .map_err(|e| {
                NluError::head(format!("cannot start a thread to train the intents: {e}"))
            })?;
        finished.await.map_err(|_| NluError::Stopped)?
    }

    /// The engine behind the worker (intent definitions and responses, for example).
    pub fn nlu(&self) -> &Nlu {
        &self.nlu
    }
}

fn run_worker(nlu: &Nlu, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    // blocking_recv returns None once every NluService handle is gone
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        for job in &batch {
            metrics::histogram!("nlu_queue_seconds")
                .record(started.duration_since(job.enqueued).as_secs_f64());
        }
        let (analyses, embeddings): (Vec<Job>, Vec<Job>) = batch
            .into_iter()
            .partition(|j| matches!(j.reply, Reply::Analysis(_)));
        let count = analyses.len() + embeddings.len();
        let texts: Vec<&str> = analyses.iter().map(|j| j.text.as_str()).collect();
        let analysed = nlu.analyze(&texts);
        let texts: Vec<&str> = embeddings.iter().map(|j| j.text.as_str()).collect();
        let embedded = nlu.embed(&texts);
        let took = started.elapsed();
        metrics::histogram!("nlu_inference_seconds").record(took.as_secs_f64());
        metrics::histogram!("nlu_batch_size").record(count as f64);
        metrics::counter!("nlu_messages_total").increment(count as u64);
        tracing::debug!(batch = count, ms = took.as_secs_f64() * 1e3, "nlu pass");
        deliver(analyses, analysed);
        deliver(embeddings, embedded);
    }
}

/// Hands each job its result, or every job the batch's error.
fn deliver<T: Into<Answer>>(jobs: Vec<Job>, result: Result<Vec<T>, NluError>) {
    match result {
        Ok(values) => {
            for (job, v) in jobs.into_iter().zip(values) {
                // a caller that gave up no longer listens: nothing to do
                job.reply.send(Ok(v.into()));
            }
        }
        Err(e) => {
            tracing::warn!("nlu pass failed: {}", crate::error::chain(&e));
            let e = Arc::new(e);
            for job in jobs {
                job.reply.send(Err(NluError::Batch(Arc::clone(&e))));
            }
        }
    }
}

/// One job's result, of either kind.
enum Answer {
    Analysis(Analysis),
    Embedding(Vec<f32>),
}

impl From<Analysis> for Answer {
    fn from(a: Analysis) -> Self {
        Answer::Analysis(a)
    }
}

impl From<Vec<f32>> for Answer {
    fn from(v: Vec<f32>) -> Self {
        Answer::Embedding(v)
    }
}

impl Reply {
    fn send(self, result: Result<Answer, NluError>) {
        match (self, result) {
            (Reply::Analysis(tx), Ok(Answer::Analysis(a))) => {
                let _ = tx.send(Ok(a));
            }
            (Reply::Embedding(tx), Ok(Answer::Embedding(v))) => {
                let _ = tx.send(Ok(v));
            }
            (Reply::Analysis(tx), Err(e)) => {
                let _ = tx.send(Err(e));
            }
            (Reply::Embedding(tx), Err(e)) => {
                let _ = tx.send(Err(e));
            }
            // results are delivered to the jobs they were computed for
            _ => unreachable!("a result of the other kind"),
        }
    }
}
