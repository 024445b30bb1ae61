//! The tuning methods side by side, all injected through the encoder's one seam (`Prompts`):
//!
//! - **FT** — full fine-tuning: nothing injected, nothing frozen.
//! - **PT** — prompt tuning (`prompt_tuning.rs`): input-layer prompts, backbone frozen.
//! - **PT2** — P-tuning v2 (`p_tuning_v2.rs`): per-layer K/V prefixes, backbone frozen.
//!
//! Under every method the task head is trainable. Frozen parameters have `require_grad = false`,
//! so autodiff computes no weight gradients for them and the optimizer keeps no state for them.

pub mod p_tuning_v2;
pub mod prompt_tuning;

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::bert::{Encoder, EncoderInput, Prompts};
use crate::error::ModelError;
use crate::heads::{Head, HeadKind, Logits};
use p_tuning_v2::{LayerSelection, PrefixEncoder, PrefixShape};
use prompt_tuning::PromptTuning;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    Ft,
    Pt {
        prompt_len: usize,
    },
    Pt2 {
        prompt_len: usize,
        /// Hidden size of the reparameterization MLP; `None` trains the prefix directly.
        #[serde(default)]
        reparam_hidden: Option<usize>,
        #[serde(default)]
        layers: LayerSelection,
    },
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ft => "ft",
            Self::Pt { .. } => "pt",
            Self::Pt2 { .. } => "pt2",
        }
    }

    pub fn prompt_len(&self) -> usize {
        match self {
            Self::Ft => 0,
            Self::Pt { prompt_len } | Self::Pt2 { prompt_len, .. } => *prompt_len,
        }
    }

    /// The method as stored in a checkpoint: a reparameterized prefix is saved collapsed.
    pub fn as_saved(&self) -> Self {
        match self {
            Self::Pt2 {
                prompt_len, layers, ..
            } => Self::Pt2 {
                prompt_len: *prompt_len,
                reparam_hidden: None,
                layers: layers.clone(),
            },
            other => other.clone(),
        }
    }

    fn freezes_backbone(&self) -> bool {
        !matches!(self, Self::Ft)
    }
}

/// `trainable / total` parameters, as PEFT's `print_trainable_parameters` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCounts {
    pub trainable: usize,
    pub total: usize,
}

impl ParamCounts {
    pub fn percent(&self) -> f64 {
        100.0 * self.trainable as f64 / self.total.max(1) as f64
    }
}

impl std::fmt::Display for ParamCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trainable params: {} / {} ({:.4}%)",
            self.trainable,
            self.total,
            self.percent()
        )
    }
}

struct CountParams(ParamCounts);

impl ModuleVisitor for CountParams {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let n = tensor.shape().num_elements();
        self.0.total += n;
        if tensor.is_require_grad() {
            self.0.trainable += n;
        }
    }
}

/// Hyperparameters a method's new weights need.
#[derive(Debug, Clone)]
pub struct MethodInit {
    /// Dropout on the prefix and before the head (the script's `hidden_dropout_prob`).
    pub dropout: f64,
    /// N(0, std) for new weights (HF `initializer_range`).
    pub init_std: f64,
}

/// An encoder with a tuning method and a task head.
#[derive(Module, Debug)]
pub struct TunedModel {
    pub encoder: Encoder,
    pub prompt: Option<PromptTuning>,
    pub prefix: Option<PrefixEncoder>,
    pub head: Head,
}

impl TunedModel {
    /// Attach `method` and a new head to a (pretrained) encoder, freezing what the method freezes.
    /// Build on an autodiff device for training.
    pub fn new(
        encoder: Encoder,
        method: &Method,
        head: &HeadKind,
        init: &MethodInit,
        device: &Device,
    ) -> Self {
        let hidden = encoder.hidden_size();
        let encoder = if method.freezes_backbone() {
            encoder.no_grad()
        } else {
            encoder
        };
        let prompt = match method {
            Method::Pt { prompt_len } => Some(PromptTuning::init(
                *prompt_len,
                hidden,
                init.init_std,
                device,
            )),
            _ => None,
        };
        let prefix = match method {
            Method::Pt2 {
                prompt_len,
                reparam_hidden,
                layers,
            } => {
                let shape = PrefixShape {
                    prompt_len: *prompt_len,
                    num_layers: encoder.num_layers(),
                    num_heads: encoder.num_heads(),
                    hidden,
                };
                Some(PrefixEncoder::init(
                    &shape,
                    layers,
                    *reparam_hidden,
                    init.dropout,
                    init.init_std,
                    device,
                ))
            }
            _ => None,
        };
        Self {
            head: Head::init(head, hidden, init.dropout, init.init_std, device),
            encoder,
            prompt,
            prefix,
        }
    }

    pub fn prompts(&self, batch: usize) -> Prompts {
        match (&self.prompt, &self.prefix) {
            (Some(prompt), _) => prompt.prompts(),
            (None, Some(prefix)) => prefix.prompts(batch),
            (None, None) => Prompts::none(),
        }
    }

    pub fn forward(&self, input: &EncoderInput) -> Logits {
        let batch = input.input_ids.dims()[0];
        let encoded = self.encoder.forward(input, &self.prompts(batch));
        self.head.forward(encoded)
    }

    pub fn param_counts(&self) -> ParamCounts {
        let mut counter = CountParams(ParamCounts {
            trainable: 0,
            total: 0,
        });
        self.visit(&mut counter);
        counter.0
    }

    /// Save what the method trained: PT/PT2 the prompts or (collapsed) prefix + head; FT everything.
    pub fn save_checkpoint(self, method: &Method, path: &Path) -> Result<Self, ModelError> {
        let model = Self {
            prefix: self.prefix.map(PrefixEncoder::collapse),
            ..self
        };
        let mut store = SafetensorsStore::from_file(path);
        if method.freezes_backbone() {
            store = store.with_regex(r"^(prompt|prefix|head)\.");
        }
        model
            .save_into(&mut store)
            .map_err(|e| ModelError::BadWeights {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(model)
    }

    /// Load a checkpoint written by `save_checkpoint` into a model built with `method.as_saved()`.
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<(), ModelError> {
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path: path.to_path_buf(),
            });
        }
        let mut store = SafetensorsStore::from_file(path).allow_partial(true);
        let result = self
            .load_from(&mut store)
            .map_err(|e| ModelError::BadWeights {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        if let Some(error) = result.errors.first() {
            return Err(ModelError::BadWeights {
                path: path.to_path_buf(),
                message: error.to_string(),
            });
        }
        if !result.applied.iter().any(|name| name.starts_with("head.")) {
            return Err(ModelError::BadWeights {
                path: path.to_path_buf(),
                message: "no head weights in the checkpoint".into(),
            });
        }
        Ok(())
    }
}
