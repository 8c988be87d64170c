//! How long a chat waits between two tries of the same message.

use std::time::Duration;

use backoff::ExponentialBackoff;

/// Backoff between attempts of the same message.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    pub(super) fn backoff(&self) -> ExponentialBackoff {
        ExponentialBackoff {
            initial_interval: self.first,
            current_interval: self.first,
            max_interval: self.max,
            multiplier: 2.0,
            randomization_factor: 0.2,
            // Never give up on a retryable error: losing a customer's answer is worse.
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        }
    }
}
