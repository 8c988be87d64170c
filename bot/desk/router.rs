//! Per-conversation ordering with backpressure. Each job carries a key (the customer's
//! channel identity); jobs with the same key always go to the same worker, which handles
//! them one at a time, so one conversation is strictly ordered while different
//! conversations run in parallel on other workers. Each worker's inbox is bounded: when it
//! is full, `dispatch` waits up to `wait` and then answers `Busy` instead of growing memory.
//! The router knows nothing about channels or what a job does.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("all workers for this conversation are busy")]
    Busy,
    #[error("the router has stopped")]
    Stopped,
}

pub struct Router<J> {
    inboxes: Vec<mpsc::Sender<J>>,
    wait: Duration,
}

impl<J: Send + 'static> Router<J> {
    /// Starts `workers` tasks, each with an inbox of `depth` jobs, all running `handle`.
    /// Workers stop when the router is dropped and their inbox is drained.
    pub fn start<F, Fut>(workers: usize, depth: usize, wait: Duration, handle: F) -> Router<J>
    where
        F: Fn(J) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let inboxes = (0..workers.max(1))
            .map(|_| {
                let (tx, mut rx) = mpsc::channel::<J>(depth.max(1));
                let handle = handle.clone();
                tokio::spawn(async move {
                    while let Some(job) = rx.recv().await {
                        handle(job).await;
                    }
                });
                tx
            })
            .collect();
        Router { inboxes, wait }
    }

    /// The worker that owns `key`.
    pub fn worker_of(&self, key: &str) -> usize {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.inboxes.len() as u64) as usize
    }

    /// Hands `job` to the worker of `key`, waiting for room at most `wait`.
    pub async fn dispatch(&self, key: &str, job: J) -> Result<(), RouteError> {
        let inbox = &self.inboxes[self.worker_of(key)];
        match inbox.send_timeout(job, self.wait).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(RouteError::Busy),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(RouteError::Stopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::sync::{oneshot, Semaphore};

    #[tokio::test]
    async fn one_conversation_keeps_its_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let router = Router::start(
            4,
            8,
            Duration::from_secs(5),
            move |(key, n): (String, u32)| {
                let s = s.clone();
                async move {
                    // Later jobs finish faster: only the router's ordering keeps them in line.
                    tokio::time::sleep(Duration::from_millis(u64::from(10 - n))).await;
                    s.lock().unwrap().push((key, n));
                }
            },
        );
        for n in 0..10 {
            router
                .dispatch("web:ana", ("web:ana".into(), n))
                .await
                .unwrap();
        }
        drop(router);
        // Wait until every job ran: workers exit once their inbox is drained.
        while seen.lock().unwrap().len() < 10 {
            tokio::task::yield_now().await;
        }
        let order: Vec<u32> = seen.lock().unwrap().iter().map(|(_, n)| *n).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn full_inbox_answers_busy() {
        let gate = Arc::new(Semaphore::new(0));
        let g = gate.clone();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let started = Arc::new(Mutex::new(Some(started_tx)));
        let router = Router::start(1, 1, Duration::from_millis(20), move |_: u32| {
            let g = g.clone();
            let started = started.clone();
            async move {
                if let Some(tx) = started.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                let _permit = g.acquire().await.unwrap();
            }
        });
        router.dispatch("a", 1).await.unwrap(); // being handled, blocked on the gate
        started_rx.await.unwrap();
        router.dispatch("a", 2).await.unwrap(); // fills the inbox of one
        assert_eq!(router.dispatch("a", 3).await, Err(RouteError::Busy));
        gate.add_permits(10);
    }
}
