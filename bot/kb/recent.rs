//! The help centre's memory of the last questions' embeddings: one turn may search for the
//! same question more than once (the LLM's passages, then the bot's own answer when the LLM
//! is not used), and the encoder pass is the search's whole cost. It holds customers' own
//! words, so an erase clears it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// How many question embeddings are kept.
const KEPT: usize = 32;

#[derive(Default)]
pub(super) struct RecentQuestions(Mutex<VecDeque<(String, Vec<f32>)>>);

impl RecentQuestions {
    fn lock(&self) -> MutexGuard<'_, VecDeque<(String, Vec<f32>)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The embedding of `question` when it was asked a moment ago.
    pub(super) fn get(&self, question: &str) -> Option<Vec<f32>> {
        self.lock()
            .iter()
            .find(|(q, _)| q == question)
            .map(|(_, v)| v.clone())
    }

    /// Keeps `question`'s embedding, forgetting the oldest beyond [`KEPT`].
    pub(super) fn remember(&self, question: &str, embedding: &[f32]) {
        let mut recent = self.lock();
        if recent.len() >= KEPT {
            recent.pop_front();
        }
        recent.push_back((question.to_string(), embedding.to_vec()));
    }

    /// Forgets them all; returns how many were held.
    pub(super) fn forget(&self) -> usize {
        let mut recent = self.lock();
        let held = recent.len();
        recent.clear();
        held
    }
}
