//! Tensors of a safetensors file, read one at a time straight from disk as f32.
//!
//! Reading each tensor on demand (instead of mapping the whole file) keeps peak memory at
//! the packed model plus one tensor in flight: the 90 MB file never sits in memory whole.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::encoder::kernels::{f16_to_f32, WeightFormat};
use crate::error::Source;
use crate::NluError;

#[derive(serde::Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

pub(super) struct Weights {
    file: File,
    tensors: HashMap<String, TensorInfo>,
    /// Where tensor data starts: after the 8-byte length and the JSON header.
    data_start: u64,
    /// `""` or `"bert."`: sentence-transformers exports use both.
    prefix: &'static str,
    path: String,
    pub format: WeightFormat,
}

impl Weights {
    pub fn open(path: &Path, format: WeightFormat) -> Result<Self, NluError> {
        let shown = path.display().to_string();
        let bad = |e: Source| {
            NluError::model_from(
                format!(
                    "{shown}: the file is not a safetensors model; delete it to fetch the \
                     default model again, or point nlu.model_dir (FRONTDESK_MODEL_DIR) at a \
                     valid model"
                ),
                e,
            )
        };
        let file = File::open(path).map_err(|e| bad(e.into()))?;
        let mut len = [0u8; 8];
        file.read_exact_at(&mut len, 0).map_err(|e| bad(e.into()))?;
        let n = u64::from_le_bytes(len);
        if n > 100 << 20 {
            return Err(bad(format!("header of {n} bytes").into()));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact_at(&mut header, 8)
            .map_err(|e| bad(e.into()))?;
        let mut raw: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| bad(e.into()))?;
        raw.remove("__metadata__");
        let tensors = raw
            .into_iter()
            .map(|(k, v)| Ok((k, serde_json::from_value(v)?)))
            .collect::<Result<HashMap<String, TensorInfo>, serde_json::Error>>()
            .map_err(|e| bad(e.into()))?;
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else {
            "bert."
        };
        Ok(Self {
            file,
            tensors,
            data_start: 8 + n,
            prefix,
            path: shown,
            format,
        })
    }

    fn err(&self, name: &str, e: impl Into<Source>) -> NluError {
        NluError::model_from(
            format!(
                "{}: tensor {}{name} (is this a BERT sentence-transformers model?)",
                self.path, self.prefix
            ),
            e,
        )
    }

    /// The tensor `name` (without prefix), checked to have `shape`, as f32.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, NluError> {
        let full = format!("{}{name}", self.prefix);
        let info = self
            .tensors
            .get(&full)
            .ok_or_else(|| self.err(name, "missing"))?;
        if info.shape != shape {
            return Err(self.err(name, format!("shape {:?}, expected {shape:?}", info.shape)));
        }
        let count: usize = shape.iter().product();
        let width = match info.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(self.err(name, format!("unsupported dtype {other}"))),
        };
        let [start, end] = info.data_offsets;
        if end < start || (end - start) as usize != count * width {
            return Err(self.err(name, "data length does not match its shape"));
        }
        let mut bytes = vec![0u8; count * width];
        self.file
            .read_exact_at(&mut bytes, self.data_start + start)
            .map_err(|e| self.err(name, e))?;
        Ok(match info.dtype.as_str() {
            "F32" => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            "F16" => bytes
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            _ => bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
        })
    }
}
