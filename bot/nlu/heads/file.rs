//! A head on disk: one safetensors file, tensors `layer{i}.weight`/`.bias`, `mean`,
//! `inv_std`, a token adapter's `adapter.project.weight`/`.bias`, `adapter.score`,
//! `adapter.out.weight`/`.bias` when the head has one, and metadata `labels` (JSON),
//! `feature_spec`, `temperature`, `threshold`, `notes` (JSON), `layers`.

use std::collections::HashMap;
use std::path::Path;

use super::adapter::TokenAdapter;
use super::head::{Dense, Head};
use crate::error::Source;
use crate::NluError;

impl Head {
    /// Save as one safetensors file: tensors `layer{i}.weight`/`.bias`, `mean`, `inv_std`;
    /// metadata `labels` (JSON), `feature_spec`, `temperature`, `threshold`, `notes` (JSON).
    pub(crate) fn save(&self, path: &Path) -> Result<(), NluError> {
        let err =
            |e: Source| NluError::head_from(format!("cannot save head to {}", path.display()), e);
        let mut tensors: Vec<(String, Vec<f32>, Vec<usize>)> = vec![
            ("mean".into(), self.mean.clone(), vec![self.mean.len()]),
            (
                "inv_std".into(),
                self.inv_std.clone(),
                vec![self.inv_std.len()],
            ),
        ];
        for (i, l) in self.layers.iter().enumerate() {
            tensors.push((
                format!("layer{i}.weight"),
                l.w.clone(),
                vec![l.outputs, l.inputs],
            ));
            tensors.push((format!("layer{i}.bias"), l.b.clone(), vec![l.outputs]));
        }
        if let Some(a) = &self.adapter {
            for (name, d) in [("adapter.project", &a.project), ("adapter.out", &a.out)] {
                tensors.push((
                    format!("{name}.weight"),
                    d.w.clone(),
                    vec![d.outputs, d.inputs],
                ));
                tensors.push((format!("{name}.bias"), d.b.clone(), vec![d.outputs]));
            }
            tensors.push(("adapter.score".into(), a.score.clone(), vec![a.score.len()]));
        }
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
            .into_iter()
            .map(|(n, v, s)| (n, v.iter().flat_map(|f| f.to_le_bytes()).collect(), s))
            .collect();
        let views = bytes
            .iter()
            .map(|(n, b, s)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .map(|v| (n.clone(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.into()))?;
        let mut meta = HashMap::new();
        meta.insert(
            "labels".to_string(),
            serde_json::to_string(&self.labels).unwrap_or_default(),
        );
        meta.insert("feature_spec".to_string(), self.feature_spec.clone());
        meta.insert("temperature".to_string(), self.temperature.to_string());
        if let Some(t) = self.threshold {
            meta.insert("threshold".to_string(), t.to_string());
        }
        meta.insert(
            "notes".to_string(),
            serde_json::to_string(&self.notes).unwrap_or_default(),
        );
        meta.insert("layers".to_string(), self.layers.len().to_string());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.into()))?;
        }
        // write then rename, so a reader never sees half a head
        let tmp = path.with_extension("safetensors.tmp");
        safetensors::serialize_to_file(views, Some(meta), &tmp).map_err(|e| err(e.into()))?;
        std::fs::rename(&tmp, path).map_err(|e| err(e.into()))
    }

    /// Read a head saved by [`save`](Self::save).
    pub(crate) fn load(path: &Path) -> Result<Head, NluError> {
        let err = |e: Source| {
            NluError::head_from(
                format!(
                    "cannot read head {}: retrain it with `frontdesk train`",
                    path.display()
                ),
                e,
            )
        };
        let bytes = std::fs::read(path).map_err(|e| err(e.into()))?;
        let (_, metadata) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| err(e.into()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| err(e.into()))?;
        let meta = metadata.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| err(format!("metadata has no {k}").into()))
        };
        let tensor = |name: &str| -> Result<(Vec<f32>, Vec<usize>), NluError> {
            let t = st
                .tensor(name)
                .map_err(|e| err(format!("{name}: {e}").into()))?;
            if t.dtype() != safetensors::Dtype::F32 {
                return Err(err(format!("{name} is not f32").into()));
            }
            let v = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok((v, t.shape().to_vec()))
        };
        let labels: Vec<String> =
            serde_json::from_str(&get("labels")?).map_err(|e| err(e.into()))?;
        let n_layers: usize = get("layers")?
            .parse()
            .map_err(|_| err("bad layers".into()))?;
        let mut layers = Vec::new();
        for i in 0..n_layers {
            let (w, s) = tensor(&format!("layer{i}.weight"))?;
            let (b, _) = tensor(&format!("layer{i}.bias"))?;
            if s.len() != 2 || b.len() != s[0] {
                return Err(err(format!("layer{i} has a bad shape {s:?}").into()));
            }
            layers.push(Dense {
                w,
                b,
                inputs: s[1],
                outputs: s[0],
            });
        }
        let (mean, _) = tensor("mean")?;
        let (inv_std, _) = tensor("inv_std")?;
        let consistent = !layers.is_empty()
            && layers[0].inputs == mean.len()
            && inv_std.len() == mean.len()
            && layers.last().map(|l| l.outputs) == Some(labels.len())
            && layers.windows(2).all(|p| p[0].outputs == p[1].inputs);
        if !consistent {
            return Err(err("layer shapes do not fit together".into()));
        }
        let adapter = if st.names().iter().any(|n| n.starts_with("adapter.")) {
            let dense = |name: &str| -> Result<Dense, NluError> {
                let (w, s) = tensor(&format!("{name}.weight"))?;
                let (b, _) = tensor(&format!("{name}.bias"))?;
                if s.len() != 2 {
                    return Err(err(format!("{name} has a bad shape {s:?}").into()));
                }
                Ok(Dense {
                    w,
                    b,
                    inputs: s[1],
                    outputs: s[0],
                })
            };
            let a = TokenAdapter {
                project: dense("adapter.project")?,
                score: tensor("adapter.score")?.0,
                out: dense("adapter.out")?,
                packed: Default::default(),
            };
            if !a.consistent(labels.len()) {
                return Err(err("the token adapter's shapes do not fit together".into()));
            }
            Some(a)
        } else {
            None
        };
        let temperature: f32 = get("temperature")?
            .parse()
            .map_err(|_| err("bad temperature".into()))?;
        let threshold = meta.get("threshold").and_then(|t| t.parse().ok());
        let notes = meta
            .get("notes")
            .and_then(|n| serde_json::from_str(n).ok())
            .unwrap_or_default();
        Ok(Head {
            labels,
            feature_spec: get("feature_spec")?,
            mean,
            inv_std,
            layers,
            temperature,
            threshold,
            notes,
            adapter,
        })
    }
}
