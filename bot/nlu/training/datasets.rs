//! Labelled data files: `label<TAB>text` tweet files, `text,intent` CSV files, and a tweet
//! file read and encoded into feature rows (through the feature cache).

use std::path::Path;

use super::adapter::{adapted_logits, cached_tokens, Tokens};
use super::feature_cache::cached_encode;
use super::Progress;
use crate::encoder::{Encoder, Features, ModelFiles};
use crate::heads::{softmax, FeatureSpec, Head, TextTask};
use crate::{model_text, NluError};

/// A labelled text read from a data file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Labelled {
    pub(crate) text: String,
    pub(crate) label: String,
}

/// Read `label<TAB>text` lines; a first line `label<TAB>text` is a header and skipped.
pub(crate) fn read_tsv(path: &Path) -> Result<Vec<Labelled>, NluError> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| NluError::data_from(format!("cannot read {}", path.display()), e))?;
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if line.trim().is_empty() || (i == 0 && line.split('\t').next() == Some("label")) {
            continue;
        }
        // `group<TAB>kind<TAB>text` (data/stakes): the kind is the label
        let line = match line.splitn(3, '\t').collect::<Vec<_>>()[..] {
            [_, kind, text] => {
                out.push(Labelled {
                    text: text.to_string(),
                    label: kind.trim().to_string(),
                });
                continue;
            }
            _ => line,
        };
        let (label, text) = line.split_once('\t').ok_or_else(|| {
            NluError::data(format!(
                "{}:{}: expected `label<TAB>text`",
                path.display(),
                i + 1
            ))
        })?;
        out.push(Labelled {
            text: text.to_string(),
            label: label.trim().to_string(),
        });
    }
    Ok(out)
}

/// Read a CSV with a header holding `text` and `intent` columns (other columns ignored).
pub(crate) fn read_intent_csv(path: &Path) -> Result<Vec<Labelled>, NluError> {
    let bad =
        |what: String, e: csv::Error| NluError::data_from(format!("{}: {what}", path.display()), e);
    let mut rdr = csv::Reader::from_path(path).map_err(|e| bad("cannot read".into(), e))?;
    let headers = rdr
        .headers()
        .map_err(|e| bad("cannot read the header".into(), e))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                NluError::data(format!(
                    "{}: header has no `{name}` column (expected `text,intent`)",
                    path.display()
                ))
            })
    };
    let (ti, li) = (col("text")?, col("intent")?);
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(format!("row {}", i + 2), e))?;
        out.push(Labelled {
            text: rec.get(ti).unwrap_or("").to_string(),
            label: rec.get(li).unwrap_or("").trim().to_string(),
        });
    }
    Ok(out)
}

/// Every row of one data file, encoded, with its label as written.
pub(crate) struct RawSet {
    pub(crate) texts: Vec<String>,
    pub(crate) labels: Vec<String>,
    pub(crate) pooled: Vec<Features>,
    /// The last layer's token states per row (for a token adapter); empty unless asked for.
    pub(crate) tokens: Vec<Tokens>,
}

impl RawSet {
    /// Read and encode a labelled file: `label<TAB>text` with a header, or (`.csv`) a CSV with
    /// `text` and `intent` columns. Encoder outputs are cached on disk by the file's content
    /// under `cache_dir`; with `tokens`, the token states too.
    pub(crate) fn load(
        encoder: &Encoder,
        files: &ModelFiles,
        cache_dir: &Path,
        path: &Path,
        tokens: bool,
        progress: &dyn Progress,
    ) -> Result<RawSet, NluError> {
        let rows = if path.extension().is_some_and(|e| e == "csv") {
            read_intent_csv(path)?
        } else {
            read_tsv(path)?
        };
        // the heads learn from the text they will read (handles and links dropped)
        let mut changed = false;
        let (texts, labels): (Vec<String>, Vec<String>) = rows
            .into_iter()
            .map(|r| {
                let read = model_text(&r.text);
                changed |= read != r.text;
                (read.into_owned(), r.label)
            })
            .unzip();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        // a file whose texts the normalisation changed gets cache entries of its own
        let variant = if changed {
            texts_digest(&refs)
        } else {
            String::new()
        };
        progress.start(&format!("encoding {}", path.display()), texts.len() as u64);
        let pooled = cached_encode(
            encoder, &files.dir, cache_dir, path, &variant, &refs, progress,
        );
        progress.finish();
        let pooled = pooled?;
        let tokens = if tokens {
            progress.start(
                &format!("token states of {}", path.display()),
                texts.len() as u64,
            );
            let last = encoder.layers();
            let t = cached_tokens(
                encoder, &files.dir, cache_dir, path, &variant, &refs, last, progress,
            );
            progress.finish();
            t?
        } else {
            Vec::new()
        };
        Ok(RawSet {
            texts,
            labels,
            pooled,
            tokens,
        })
    }
}

/// What tells cache entries of a file whose texts were normalised apart: a digest of the
/// texts read (so a change of `model_text` re-encodes).
pub(crate) fn texts_digest(texts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for t in texts {
        h.update(t.as_bytes());
        h.update(b"\0");
    }
    format!("model-text:{}", hex::encode(h.finalize()))
}

/// Encoded labelled rows of one data file (or several mixed), each with a loss weight.
#[derive(Default)]
pub(crate) struct Dataset {
    pub(crate) texts: Vec<String>,
    pub(crate) labels: Vec<usize>,
    pub(crate) pooled: Vec<Features>,
    /// Token states per row, or empty when not loaded (then for every row).
    pub(crate) tokens: Vec<Tokens>,
    /// How much each example counts in training (1 unless mixed from weighted sources).
    pub(crate) weights: Vec<f32>,
}

impl Dataset {
    /// Read and encode a labelled file of `task` (cached on disk by content under
    /// `cache_dir`).
    pub(crate) fn load(
        encoder: &Encoder,
        files: &ModelFiles,
        cache_dir: &Path,
        task: TextTask,
        path: &Path,
        tokens: bool,
        progress: &dyn Progress,
    ) -> Result<Dataset, NluError> {
        let raw = RawSet::load(encoder, files, cache_dir, path, tokens, progress)?;
        let labels = raw
            .labels
            .iter()
            .map(|l| task.index(l))
            .collect::<Result<Vec<_>, _>>()?;
        let n = labels.len();
        Ok(Dataset {
            texts: raw.texts,
            labels,
            pooled: raw.pooled,
            tokens: raw.tokens,
            weights: vec![1.0; n],
        })
    }

    /// The rows of `raw` that `map` (row index, label as written) gives a class, each with
    /// loss weight `weight`.
    pub(crate) fn select(
        raw: &RawSet,
        weight: f32,
        map: impl Fn(usize, &str) -> Option<usize>,
    ) -> Dataset {
        let mut out = Dataset::default();
        for (i, ((t, l), p)) in raw
            .texts
            .iter()
            .zip(&raw.labels)
            .zip(&raw.pooled)
            .enumerate()
        {
            if let Some(y) = map(i, l) {
                out.texts.push(t.clone());
                out.labels.push(y);
                out.pooled.push(p.clone());
                if let Some(t) = raw.tokens.get(i) {
                    out.tokens.push(t.clone());
                }
                out.weights.push(weight);
            }
        }
        out
    }

    /// Append every row of `other`.
    pub(crate) fn extend(&mut self, other: Dataset) {
        self.texts.extend(other.texts);
        self.labels.extend(other.labels);
        self.pooled.extend(other.pooled);
        self.tokens.extend(other.tokens);
        self.weights.extend(other.weights);
    }

    /// Append the rows of `other` whose label is `label` as examples of class 0.
    pub(crate) fn add_negatives(&mut self, other: &Dataset, label: usize) {
        for (i, ((t, &l), p)) in other
            .texts
            .iter()
            .zip(&other.labels)
            .zip(&other.pooled)
            .enumerate()
        {
            if l == label {
                if let Some(tokens) = other.tokens.get(i) {
                    self.tokens.push(tokens.clone());
                }
                self.texts.push(t.clone());
                self.labels.push(0);
                self.pooled.push(p.clone());
                self.weights.push(1.0);
            }
        }
    }

    pub(crate) fn rows(&self, spec: &FeatureSpec) -> Result<Vec<Vec<f32>>, NluError> {
        self.pooled
            .iter()
            .zip(&self.texts)
            .map(|(p, t)| spec.row(p, t))
            .collect()
    }

    /// The raw scores of `head` (reading rows of `spec`) for every row, its token adapter
    /// included (which needs the set loaded with its token states).
    pub(crate) fn logits(
        &self,
        head: &Head,
        spec: &FeatureSpec,
    ) -> Result<Vec<Vec<f32>>, NluError> {
        let rows = self.rows(spec)?;
        match &head.adapter {
            None => Ok(rows.iter().map(|r| head.logits(r)).collect()),
            Some(_) if !self.has_tokens() => Err(NluError::train(
                "the head has a token adapter but the data was loaded without token states",
            )),
            Some(a) => {
                let base: Vec<Vec<f32>> = rows.iter().map(|r| head.logits(r)).collect();
                Ok(adapted_logits(a, &self.tokens, &base))
            }
        }
    }

    /// Calibrated probabilities of `head` for every row (see [`logits`](Self::logits)).
    pub(crate) fn probabilities(
        &self,
        head: &Head,
        spec: &FeatureSpec,
    ) -> Result<Vec<Vec<f32>>, NluError> {
        Ok(self
            .logits(head, spec)?
            .iter()
            .map(|l| softmax(l, head.temperature))
            .collect())
    }

    /// Whether every row has its token states.
    pub(crate) fn has_tokens(&self) -> bool {
        self.tokens.len() == self.labels.len()
    }

    /// Number of examples per class.
    pub(crate) fn counts(&self, k: usize) -> Vec<usize> {
        let mut c = vec![0; k];
        self.labels.iter().for_each(|&y| c[y] += 1);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_needs_a_tab() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tsv");
        std::fs::write(&p, "label\ttext\npositive\tgreat\nno tab here\n").unwrap();
        let e = read_tsv(&p).unwrap_err().to_string();
        assert!(e.contains("t.tsv:3"), "{e}");
        std::fs::write(&p, "label\ttext\npositive\tgreat\n").unwrap();
        assert_eq!(read_tsv(&p).unwrap()[0].label, "positive");
        // without a header the first line is an example
        std::fs::write(&p, "calm\twhere is my order\nangry\tgive it back\n").unwrap();
        let rows = read_tsv(&p).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].label, "calm");
        // three columns: the middle one (the kind) is the label
        std::fs::write(
            &p,
            "person\tsafety\tit sparked\nbot\troutine\tis it safe?\n",
        )
        .unwrap();
        let rows = read_tsv(&p).unwrap();
        assert_eq!(
            (rows[0].label.as_str(), rows[0].text.as_str()),
            ("safety", "it sparked")
        );
        assert_eq!(rows[1].label, "routine");
    }
}
