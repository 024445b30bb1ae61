//! Loading a Hugging Face model dir (`config.json`, `model.safetensors`, `tokenizer.json`).
//!
//! The safetensors header is checked against the config first, so a missing tensor or a wrong
//! shape is reported in the checkpoint's own names; then burn-store copies the weights in, with the
//! few key renames that separate HF names from the module's field names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::store::{ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::Device;

use crate::config::{EncoderConfig, ModelFamily};
use crate::encoder::Encoder;
use crate::error::ModelError;

/// The three files of a Hugging Face model dir.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub root: PathBuf,
}

impl ModelDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn file(&self, name: &str) -> Result<PathBuf, ModelError> {
        let path = self.root.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(ModelError::MissingFile { path })
        }
    }

    pub fn config_path(&self) -> Result<PathBuf, ModelError> {
        self.file("config.json")
    }

    pub fn weights_path(&self) -> Result<PathBuf, ModelError> {
        self.file("model.safetensors")
    }

    pub fn tokenizer_path(&self) -> Result<PathBuf, ModelError> {
        self.file("tokenizer.json")
    }

    pub fn config(&self) -> Result<EncoderConfig, ModelError> {
        EncoderConfig::from_file(&self.config_path()?)
    }
}

/// Task checkpoints (`BertForSequenceClassification`, …) nest the encoder under the family name.
const ENCODER_PREFIXES: [&str; 3] = ["bert.", "roberta.", "deberta."];

/// HF key → module path renames. Applied in order to every key.
fn key_renames(prefix: &str, family: ModelFamily) -> Vec<(String, String)> {
    let mut renames = vec![];
    if !prefix.is_empty() {
        renames.push((format!(r"^{}", regex_escape(prefix)), String::new()));
    }
    renames.push((r"\.LayerNorm\.".into(), ".layer_norm.".into()));
    renames.push((
        r"\.attention\.self\.".into(),
        ".attention.self_attn.".into(),
    ));
    if family == ModelFamily::DebertaV2 {
        // DeBERTa names the projections query_proj/…; its relative table and that table's
        // LayerNorm sit in the layer stack (`relative` here).
        renames.push((r"\.(query|key|value)_proj\.".into(), ".$1.".into()));
        renames.push((
            r"^encoder\.rel_embeddings\.".into(),
            "encoder.relative.rel_embeddings.".into(),
        ));
        renames.push((
            r"^encoder\.layer_norm\.".into(),
            "encoder.relative.layer_norm.".into(),
        ));
    }
    renames
}

pub(crate) fn regex_escape(s: &str) -> String {
    s.replace('.', r"\.")
}

/// The tensors an encoder of this config needs, in HF names (after the family prefix), with shapes.
fn expected_tensors(config: &EncoderConfig, with_pooler: bool) -> Vec<(String, Vec<usize>)> {
    let h = config.hidden_size;
    let i = config.intermediate_size;
    let deberta = config.family() == ModelFamily::DebertaV2;
    let mut expected = vec![(
        "embeddings.word_embeddings.weight".to_string(),
        vec![config.vocab_size, h],
    )];
    if !deberta || config.deberta.position_biased_input {
        expected.push((
            "embeddings.position_embeddings.weight".into(),
            vec![config.max_position_embeddings, h],
        ));
    }
    if config.type_vocab_size > 0 {
        expected.push((
            "embeddings.token_type_embeddings.weight".into(),
            vec![config.type_vocab_size, h],
        ));
    }
    expected.push(("embeddings.LayerNorm.weight".into(), vec![h]));
    expected.push(("embeddings.LayerNorm.bias".into(), vec![h]));
    let projection = if deberta { "_proj" } else { "" };
    let (query, key, value) = (
        format!("attention.self.query{projection}"),
        format!("attention.self.key{projection}"),
        format!("attention.self.value{projection}"),
    );
    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}.");
        for (name, out_dim, in_dim) in [
            (query.as_str(), h, h),
            (key.as_str(), h, h),
            (value.as_str(), h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", i, h),
            ("output.dense", h, i),
        ] {
            expected.push((format!("{p}{name}.weight"), vec![out_dim, in_dim]));
            expected.push((format!("{p}{name}.bias"), vec![out_dim]));
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            expected.push((format!("{p}{norm}.weight"), vec![h]));
            expected.push((format!("{p}{norm}.bias"), vec![h]));
        }
    }
    if deberta {
        expected.extend(deberta_tensors(config));
    }
    if with_pooler {
        expected.push(("pooler.dense.weight".into(), vec![h, h]));
        expected.push(("pooler.dense.bias".into(), vec![h]));
    }
    expected
}

/// DeBERTa's tensors outside the layers: the relative table (+ LayerNorm), the convolution.
fn deberta_tensors(config: &EncoderConfig) -> Vec<(String, Vec<usize>)> {
    let h = config.hidden_size;
    let keys = &config.deberta;
    let mut expected = vec![];
    if keys.relative_attention {
        let rows = 2 * config.relative_span();
        expected.push(("encoder.rel_embeddings.weight".into(), vec![rows, h]));
        if config.relative_layer_norm() {
            expected.push(("encoder.LayerNorm.weight".into(), vec![h]));
            expected.push(("encoder.LayerNorm.bias".into(), vec![h]));
        }
    }
    if keys.conv_kernel_size > 0 {
        let groups = keys.conv_groups.unwrap_or(1);
        expected.push((
            "encoder.conv.conv.weight".into(),
            vec![h, h / groups, keys.conv_kernel_size],
        ));
        expected.push(("encoder.conv.conv.bias".into(), vec![h]));
        expected.push(("encoder.conv.LayerNorm.weight".into(), vec![h]));
        expected.push(("encoder.conv.LayerNorm.bias".into(), vec![h]));
    }
    expected
}

/// What the safetensors header says: tensor names (family prefix stripped) → shapes.
struct Header {
    prefix: &'static str,
    shapes: HashMap<String, Vec<usize>>,
}

/// A safetensors file's bytes, and its tensors' names → shapes as its header lists them.
pub(crate) type Safetensors = (Vec<u8>, HashMap<String, Vec<usize>>);

pub(crate) fn read_safetensors(path: &Path) -> Result<Safetensors, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| ModelError::BadWeights {
            path: path.to_path_buf(),
            message: format!("{e:?}"),
        })?;
    let shapes = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.shape.clone()))
        .collect();
    Ok((bytes, shapes))
}

/// The header with the family prefix found and stripped.
fn read_header(raw: HashMap<String, Vec<usize>>) -> Header {
    let prefix = ENCODER_PREFIXES
        .into_iter()
        .find(|p| raw.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
        .unwrap_or("");
    let shapes = raw
        .into_iter()
        .filter_map(|(name, shape)| {
            let name = name.strip_prefix(prefix)?.to_string();
            // Old checkpoints name LayerNorm parameters gamma/beta.
            let name = name
                .replace("LayerNorm.gamma", "LayerNorm.weight")
                .replace("LayerNorm.beta", "LayerNorm.bias");
            Some((name, shape))
        })
        .collect();
    Header { prefix, shapes }
}

fn check_tensors(
    path: &Path,
    header: &Header,
    expected: &[(String, Vec<usize>)],
) -> Result<(), ModelError> {
    for (name, shape) in expected {
        match header.shapes.get(name) {
            None => {
                return Err(ModelError::MissingTensor {
                    path: path.to_path_buf(),
                    name: format!("{}{name}", header.prefix),
                })
            }
            Some(found) if found != shape => {
                return Err(ModelError::WrongShape {
                    path: path.to_path_buf(),
                    name: format!("{}{name}", header.prefix),
                    expected: shape.clone(),
                    found: found.clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Build the encoder of a model dir and load its pretrained weights.
pub fn load_encoder(
    dir: &ModelDir,
    device: &Device,
) -> Result<(EncoderConfig, Encoder), ModelError> {
    let config = dir.config()?;
    let weights = dir.weights_path()?;
    let encoder = load_weights(&config, &weights, device)?;
    Ok((config, encoder))
}

/// Load `model.safetensors` into a freshly built encoder of `config`.
pub fn load_weights(
    config: &EncoderConfig,
    path: &Path,
    device: &Device,
) -> Result<Encoder, ModelError> {
    let (bytes, raw) = read_safetensors(path)?;
    let header = read_header(raw);
    let with_pooler = header.shapes.contains_key("pooler.dense.weight");
    check_tensors(path, &header, &expected_tensors(config, with_pooler))?;

    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true);
    for (from, to) in key_renames(header.prefix, config.family()) {
        store = store.with_key_remapping(from, to);
    }
    let mut encoder = Encoder::init(config, with_pooler, device);
    let result = apply_store(&mut encoder, &mut store, path)?;
    // Every parameter the header check promised must have been applied.
    let missing: Vec<_> = result
        .missing
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| !name.ends_with(".training"))
        .collect();
    if !missing.is_empty() {
        return Err(ModelError::BadWeights {
            path: path.to_path_buf(),
            message: format!("parameters not loaded: {}", missing.join(", ")),
        });
    }
    Ok(encoder)
}

/// Load a store's tensors into `module`; a tensor that does not fit is an error naming `path`.
pub(crate) fn apply_store<M: ModuleSnapshot>(
    module: &mut M,
    store: &mut SafetensorsStore,
    path: &Path,
) -> Result<ApplyResult, ModelError> {
    let bad = |message: String| ModelError::BadWeights {
        path: path.to_path_buf(),
        message,
    };
    let result = module.load_from(store).map_err(|e| bad(e.to_string()))?;
    match result.errors.first() {
        Some(error) => Err(bad(error.to_string())),
        None => Ok(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_tensor_count_matches_bert_layout() {
        let config = EncoderConfig::tiny_bert();
        // 5 embedding tensors + 16 per layer + 2 pooler.
        assert_eq!(expected_tensors(&config, true).len(), 5 + 16 * 2 + 2);
        assert_eq!(expected_tensors(&config, false).len(), 5 + 16 * 2);
    }

    #[test]
    fn renames_strip_the_family_prefix_first() {
        let renames = key_renames("roberta.", ModelFamily::Roberta);
        assert_eq!(renames[0].0, r"^roberta\.");
        assert_eq!(renames.len(), 3);
        assert_eq!(key_renames("", ModelFamily::Bert).len(), 2);
    }
}
