//! Okapi BM25 over the passages: the keyword half of retrieval ("Klarna", "VAT", "PO box"
//! are words an embedding of a short question can miss).

use std::collections::HashMap;

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// Words too common to tell passages apart.
const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "have",
    "how", "i", "if", "in", "is", "it", "me", "my", "of", "on", "or", "our", "so", "that", "the",
    "their", "them", "there", "this", "to", "we", "what", "when", "where", "which", "will", "with",
    "you", "your", "yours", "get", "any", "all", "us", "was", "has", "its", "not",
];

/// Lower-cased words without stop words, with a crude plural/verb-ending fold so
/// "refunds", "refunded" and "refund" meet.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| fold(&w))
        .collect()
}

fn fold(w: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(stem) = w.strip_suffix(suffix) {
            if stem.chars().count() >= 4 && !w.ends_with("ss") {
                return stem.to_string();
            }
        }
    }
    w.to_string()
}

/// Term statistics of a fixed set of documents.
#[derive(Debug, Clone)]
pub struct Bm25 {
    docs: Vec<HashMap<String, f32>>,
    lengths: Vec<f32>,
    average: f32,
    idf: HashMap<String, f32>,
}

impl Bm25 {
    pub fn new<'a>(docs: impl IntoIterator<Item = &'a str>) -> Bm25 {
        let mut counts = Vec::new();
        let mut lengths = Vec::new();
        let mut df: HashMap<String, f32> = HashMap::new();
        for doc in docs {
            let t = terms(doc);
            lengths.push(t.len() as f32);
            let mut tf: HashMap<String, f32> = HashMap::new();
            for term in t {
                *tf.entry(term).or_default() += 1.0;
            }
            for term in tf.keys() {
                *df.entry(term.clone()).or_default() += 1.0;
            }
            counts.push(tf);
        }
        let n = counts.len() as f32;
        let idf = df
            .into_iter()
            .map(|(t, d)| (t, ((n - d + 0.5) / (d + 0.5) + 1.0).ln()))
            .collect();
        let average = lengths.iter().sum::<f32>() / n.max(1.0);
        Bm25 {
            docs: counts,
            lengths,
            average: average.max(1.0),
            idf,
        }
    }

    /// The BM25 score of every document for `query`, in document order.
    pub fn scores(&self, query: &str) -> Vec<f32> {
        let mut q = terms(query);
        q.sort();
        q.dedup();
        self.docs
            .iter()
            .zip(&self.lengths)
            .map(|(tf, &len)| {
                q.iter()
                    .filter_map(|t| Some((self.idf.get(t)?, tf.get(t)?)))
                    .map(|(idf, &f)| {
                        idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len / self.average))
                    })
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_words_rank_their_document_first() {
        let idx = Bm25::new([
            "Returns are free within 30 days",
            "Pay later with Klarna in three instalments",
            "Standard delivery takes 3 to 5 days",
        ]);
        let s = idx.scores("can I pay with klarna?");
        assert!(s[1] > s[0] && s[1] > s[2], "{s:?}");
        assert_eq!(idx.scores("hello")[0], 0.0);
    }

    #[test]
    fn endings_fold_together() {
        assert_eq!(terms("Refunds refunded"), vec!["refund", "refund"]);
    }
}
