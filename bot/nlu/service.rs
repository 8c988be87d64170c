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
    reply: oneshot::Sender<Result<Analysis, NluError>>,
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
            reply,
        };
        self.jobs.send(job).await.map_err(|_| NluError::Stopped)?;
        answer.await.map_err(|_| NluError::Stopped)?
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
        let texts: Vec<&str> = batch.iter().map(|j| j.text.as_str()).collect();
        let result = nlu.analyze(&texts);
        let took = started.elapsed();
        metrics::histogram!("nlu_inference_seconds").record(took.as_secs_f64());
        metrics::histogram!("nlu_batch_size").record(batch.len() as f64);
        metrics::counter!("nlu_messages_total").increment(batch.len() as u64);
        tracing::debug!(
            batch = batch.len(),
            ms = took.as_secs_f64() * 1e3,
            "nlu pass"
        );
        match result {
            Ok(analyses) => {
                for (job, a) in batch.into_iter().zip(analyses) {
                    // a caller that gave up no longer listens: nothing to do
                    let _ = job.reply.send(Ok(a));
                }
            }
            Err(e) => {
                tracing::warn!("nlu pass failed: {}", crate::error::chain(&e));
                let e = Arc::new(e);
                for job in batch {
                    let _ = job.reply.send(Err(NluError::Batch(Arc::clone(&e))));
                }
            }
        }
    }
}
