//! The encoder's hyperparameters, read straight from a Hugging Face `config.json`.

use serde::Deserialize;
use std::path::Path;

use crate::error::ModelError;

/// Which checkpoint family a model dir holds. Family differences are data, not code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFamily {
    Bert,
    Roberta,
    /// DeBERTa-v2 and v3 (`model_type` "deberta-v2" for both): disentangled relative attention.
    DebertaV2,
}

impl ModelFamily {
    fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Self::Bert),
            // XLM-R and CamemBERT share RoBERTa's layout and position rule.
            "roberta" | "xlm-roberta" | "camembert" => Some(Self::Roberta),
            "deberta-v2" => Some(Self::DebertaV2),
            _ => None,
        }
    }
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_dropout() -> f64 {
    0.1
}
fn default_initializer_range() -> f64 {
    0.02
}
fn default_true() -> bool {
    true
}
fn default_minus_one() -> i64 {
    -1
}
fn default_norm_rel_ebd() -> String {
    "none".into()
}
fn default_conv_act() -> String {
    "tanh".into()
}

/// DeBERTa's `pos_att_type`: "p2c|c2p" in older configs, ["p2c", "c2p"] in newer ones.
fn attention_types<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Types {
        Joined(String),
        List(Vec<String>),
    }
    let types = match Option::<Types>::deserialize(de)? {
        None => vec![],
        Some(Types::Joined(text)) => text.split('|').map(str::to_string).collect(),
        Some(Types::List(list)) => list,
    };
    Ok(types
        .iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty() && t != "none")
        .collect())
}

/// The keys of `config.json` that the encoder uses; unknown keys are ignored, as transformers does.
#[derive(Debug, Clone, Deserialize)]
pub struct EncoderConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// DeBERTa-v2's keys (transformers' `DebertaV2Config` defaults where a key is absent).
    #[serde(flatten)]
    pub deberta: DebertaKeys,
}

/// The `config.json` keys only DeBERTa-v2/v3 reads; BERT and RoBERTa ignore them.
#[derive(Debug, Clone, Deserialize)]
pub struct DebertaKeys {
    #[serde(default)]
    pub relative_attention: bool,
    /// Relative distances are clamped to ±this (−1: `max_position_embeddings`).
    #[serde(default = "default_minus_one")]
    pub max_relative_positions: i64,
    /// Log buckets for relative distances (−1: none, distances are clamped).
    #[serde(default = "default_minus_one")]
    pub position_buckets: i64,
    #[serde(default = "default_norm_rel_ebd")]
    pub norm_rel_ebd: String,
    #[serde(default)]
    pub share_att_key: bool,
    #[serde(default, deserialize_with = "attention_types")]
    pub pos_att_type: Vec<String>,
    #[serde(default = "default_true")]
    pub position_biased_input: bool,
    #[serde(default)]
    pub conv_kernel_size: usize,
    #[serde(default = "default_conv_act")]
    pub conv_act: String,
    #[serde(default)]
    pub conv_groups: Option<usize>,
    #[serde(default)]
    pub embedding_size: Option<usize>,
    #[serde(default)]
    pub attention_head_size: Option<usize>,
}

impl Default for DebertaKeys {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

impl EncoderConfig {
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| ModelError::BadConfig {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::BadConfig {
            path: path.to_path_buf(),
            message,
        };
        if ModelFamily::from_model_type(&self.model_type).is_none() {
            return Err(ModelError::UnknownModelType {
                path: path.to_path_buf(),
                model_type: self.model_type.clone(),
            });
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if self.hidden_act != "gelu" {
            return Err(bad(format!(
                "hidden_act \"{}\" is not supported (expected \"gelu\")",
                self.hidden_act
            )));
        }
        if self.family() == ModelFamily::DebertaV2 {
            self.validate_deberta().map_err(bad)?;
        }
        if let Some(kind) = &self.position_embedding_type {
            if kind != "absolute" {
                return Err(bad(format!(
                    "position_embedding_type \"{kind}\" is not supported (expected \"absolute\")"
                )));
            }
        }
        Ok(())
    }

    /// What of DeBERTa-v2's options ptv2 builds; the rest is refused by name.
    fn validate_deberta(&self) -> Result<(), String> {
        let d = &self.deberta;
        if let Some(size) = d.embedding_size.filter(|&e| e != self.hidden_size) {
            return Err(format!(
                "embedding_size {size} differs from hidden_size {} (embed_proj is not supported)",
                self.hidden_size
            ));
        }
        if let Some(size) = d.attention_head_size.filter(|&a| a != self.head_dim()) {
            return Err(format!(
                "attention_head_size {size} is not hidden_size / num_attention_heads = {}",
                self.head_dim()
            ));
        }
        if let Some(kind) = d
            .pos_att_type
            .iter()
            .find(|t| !["c2p", "p2c"].contains(&t.as_str()))
        {
            return Err(format!(
                "pos_att_type \"{kind}\" is not supported (expected c2p and/or p2c)"
            ));
        }
        if d.relative_attention && !d.pos_att_type.is_empty() && !d.share_att_key {
            return Err(
                "share_att_key false (separate position projections, DeBERTa v1 style) \
                        is not supported; DeBERTa-v2/v3 checkpoints share them"
                    .into(),
            );
        }
        if d.conv_kernel_size > 0 && !["gelu", "tanh"].contains(&d.conv_act.as_str()) {
            return Err(format!(
                "conv_act \"{}\" is not supported (expected \"gelu\" or \"tanh\")",
                d.conv_act
            ));
        }
        if d.conv_kernel_size.is_multiple_of(2) && d.conv_kernel_size > 0 {
            return Err(format!(
                "conv_kernel_size {} is even (transformers pads (k − 1) / 2 each side, odd k keeps the length)",
                d.conv_kernel_size
            ));
        }
        Ok(())
    }

    /// DeBERTa's relative distance limit: `max_relative_positions`, or the absolute table's size.
    pub fn max_relative_positions(&self) -> usize {
        match self.deberta.max_relative_positions {
            n if n >= 1 => n as usize,
            _ => self.max_position_embeddings,
        }
    }

    /// Rows of DeBERTa's relative table each side of distance 0 (`position_buckets`, else
    /// `max_relative_positions`): the table has twice this many.
    pub fn relative_span(&self) -> usize {
        match self.deberta.position_buckets {
            b if b > 0 => b as usize,
            _ => self.max_relative_positions(),
        }
    }

    /// DeBERTa's relative table goes through a LayerNorm (`norm_rel_ebd` names `layer_norm`).
    pub fn relative_layer_norm(&self) -> bool {
        let kinds = &self.deberta.norm_rel_ebd;
        kinds.split('|').any(|n| n.trim() == "layer_norm")
    }

    pub fn family(&self) -> ModelFamily {
        ModelFamily::from_model_type(&self.model_type).expect("validated in from_file")
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// RoBERTa's padding index: position ids start after it, padding keeps it.
    pub fn padding_idx(&self) -> i64 {
        self.pad_token_id.unwrap_or(match self.family() {
            ModelFamily::Bert | ModelFamily::DebertaV2 => 0,
            ModelFamily::Roberta => 1,
        })
    }

    /// A tiny BERT for unit tests: random weights, milliseconds a step.
    pub fn tiny_bert() -> Self {
        Self {
            model_type: "bert".into(),
            vocab_size: 100,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            max_position_embeddings: 64,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            initializer_range: 0.02,
            pad_token_id: Some(0),
            position_embedding_type: None,
            deberta: DebertaKeys::default(),
        }
    }

    /// A tiny DeBERTa-v2 for unit tests: deberta-v2-xlarge's options (log buckets, shared c2p
    /// and p2c keys, relative LayerNorm, the convolution, no absolute positions or token types).
    pub fn tiny_deberta() -> Self {
        Self {
            model_type: "deberta-v2".into(),
            type_vocab_size: 0,
            layer_norm_eps: 1e-7,
            deberta: DebertaKeys {
                relative_attention: true,
                position_buckets: 8,
                norm_rel_ebd: "layer_norm".into(),
                share_att_key: true,
                pos_att_type: vec!["p2c".into(), "c2p".into()],
                position_biased_input: false,
                conv_kernel_size: 3,
                conv_act: "gelu".into(),
                ..DebertaKeys::default()
            },
            ..Self::tiny_bert()
        }
    }
}
