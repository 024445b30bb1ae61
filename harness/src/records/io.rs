//! Writing results: always to a temporary file beside the target, then renamed into place, so a
//! crash never leaves a half-written file and readers see the old or the new one.

use std::path::Path;

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_atomic(path, text.as_bytes())
}

/// One f32 tensor: its shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Floats {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Floats {
    /// `[a, b]` → `[b, a]` (burn's Linear weight is `[in, out]`, torch's `[out, in]`).
    pub fn transposed(&self) -> Self {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let values = (0..cols)
            .flat_map(|c| (0..rows).map(move |r| (r, c)))
            .map(|(r, c)| self.values[r * cols + c])
            .collect();
        Self {
            shape: vec![cols, rows],
            values,
        }
    }
}

/// Every tensor of a safetensors file (f32 only).
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, Floats>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            bail!(
                "{}: tensor {name} is {:?}, expected F32",
                path.display(),
                view.dtype()
            );
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(
            name,
            Floats {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Ok(tensors)
}

/// One tensor to write: its dtype, shape and little-endian bytes.
pub struct RawTensor {
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl RawTensor {
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self {
            dtype: safetensors::Dtype::F32,
            shape,
            bytes,
        }
    }

    pub fn i64(shape: Vec<usize>, values: &[i64]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self {
            dtype: safetensors::Dtype::I64,
            shape,
            bytes,
        }
    }
}

/// A safetensors file of `tensors` (sorted by name, as safetensors stores them), written atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, RawTensor>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, t)| {
            let view = safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes)?;
            Ok((name.as_str(), view))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let file = safetensors::serialize(views, metadata)
        .with_context(|| format!("cannot serialize {}", path.display()))?;
    write_atomic(path, &file)
}

/// The short git revision of the working directory, or "unknown", for reports.
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".into(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
}
