//! The encoder's hyperparameters, read straight from a Hugging Face `config.json`.

use serde::Deserialize;
use std::path::Path;

use crate::error::ModelError;

/// Which checkpoint family a model dir holds. Family differences are data, not code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFamily {
    Bert,
    Roberta,
}

impl ModelFamily {
    fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Self::Bert),
            // XLM-R and CamemBERT share RoBERTa's layout and position rule.
            "roberta" | "xlm-roberta" | "camembert" => Some(Self::Roberta),
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
        if self.hidden_size % self.num_attention_heads != 0 {
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
        if let Some(kind) = &self.position_embedding_type {
            if kind != "absolute" {
                return Err(bad(format!(
                    "position_embedding_type \"{kind}\" is not supported (expected \"absolute\")"
                )));
            }
        }
        Ok(())
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
            ModelFamily::Bert => 0,
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
        }
    }
}
