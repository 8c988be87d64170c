//! Customers who write all along while a test changes something under the server (a rules
//! or intents reload, a retraining): each gets a fresh identity (one customer's own rate
//! limit is not what is tested) and every message must be answered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::server::TestServer;

pub struct Steady {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Steady {
    /// Sends `text` as a new customer every `every` until [`stop`](Self::stop); a message
    /// that is not answered with 200 fails the test.
    pub fn start(s: Arc<TestServer>, text: &'static str, every: Duration) -> Steady {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let task = {
            let (stop, answered) = (stop.clone(), answered.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = s
                        .post_message(json!({"user_id": format!("steady-{i}"), "text": text}))
                        .await;
                    assert_eq!(status, 200, "a message failed during the change: {body}");
                    answered.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    tokio::time::sleep(every).await;
                }
            })
        };
        Steady {
            stop,
            answered,
            task,
        }
    }

    /// Stops the customers; how many messages were answered (a failed one panics here).
    pub async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("no message failed");
        self.answered.load(Ordering::Relaxed)
    }
}
