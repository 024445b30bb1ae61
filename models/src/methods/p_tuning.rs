//! P-tuning (v1; Liu et al. 2021, "GPT Understands, Too"), as PEFT's `P_TUNING` builds it: `P`
//! trainable embeddings pass through a prompt encoder — a 2-layer bidirectional LSTM and an MLP
//! (`lstm`), or a 3-layer MLP (`mlp`) — whose outputs stand in for word embeddings before the
//! real tokens, as PT's prompts do. Input layer only; the backbone is frozen.
//!
//! After training the encoder's output is all that matters: `collapse` folds it into PT's plain
//! prompts, which is what a checkpoint and PEFT's saved adapter (`prompt_embeddings`) hold.
//! The starts are PyTorch's defaults, as in PEFT: the embedding N(0, 1), each linear and LSTM
//! weight U(±1/√fan_in).

use burn::module::{Initializer, Module, Param};
use burn::nn::{BiLstm, BiLstmConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::facts::{MethodFacts, PromptPlace, Trains, HEAD_PATHS};
use super::prompt_tuning::{PromptPool, PromptTuning};
use crate::encoder::Prompts;

pub const FACTS: MethodFacts = MethodFacts {
    name: "ptuning",
    short: "P-tuning",
    label: "P-tuning (v1)",
    about: "P-tuning v1 (Liu et al. 2021): input prompts made by a prompt encoder (LSTM or MLP), backbone frozen",
    color: (23, 190, 207),
    prompts: PromptPlace::Input,
    freezes_backbone: true,
    trains: Trains::Matching(&[r"^adapter\.", HEAD_PATHS]),
    shares_served_backbone: true,
    peft_type: Some("P_TUNING"),
};

/// PEFT's `encoder_num_layers` default: the LSTM's depth.
pub const LSTM_LAYERS: usize = 2;

/// The prompt encoder's network (PEFT's `encoder_reparameterization_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PromptEncoderKind {
    /// The P-tuning paper's: a bidirectional LSTM, then Linear(2h, 2h) → ReLU → Linear(2h, H).
    #[default]
    Lstm,
    /// PEFT's recommended one: Linear(H, h) → ReLU → Linear(h, h) → ReLU → Linear(h, H).
    Mlp,
}

impl PromptEncoderKind {
    pub fn is_lstm(&self) -> bool {
        *self == Self::Lstm
    }

    /// The hidden size `h` when none is given: the P-tuning paper's code (an LSTM of H/2 per
    /// direction; an MLP as wide as the model).
    pub fn default_hidden(self, model_hidden: usize) -> usize {
        match self {
            Self::Lstm => model_hidden / 2,
            Self::Mlp => model_hidden,
        }
    }

    /// PEFT's name of it.
    pub fn peft_name(self) -> &'static str {
        match self {
            Self::Lstm => "LSTM",
            Self::Mlp => "MLP",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "lstm" => Ok(Self::Lstm),
            "mlp" => Ok(Self::Mlp),
            _ => Err(format!("prompt encoder \"{text}\": expected lstm or mlp")),
        }
    }
}

impl std::fmt::Display for PromptEncoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Lstm => "lstm",
            Self::Mlp => "mlp",
        })
    }
}

crate::text_form!(PromptEncoderKind);

/// The LSTM encoder: `layers` bidirectional LSTMs, the second reading the first's both
/// directions, then PEFT's `mlp_head`.
#[derive(Module, Debug)]
pub struct LstmHead {
    pub layers: Vec<BiLstm>,
    pub dense_in: Linear,
    pub dense_out: Linear,
}

/// The MLP encoder, PEFT's three linears.
#[derive(Module, Debug)]
pub struct MlpHead {
    pub dense_in: Linear,
    pub dense_mid: Linear,
    pub dense_out: Linear,
}

#[allow(clippy::large_enum_variant)] // one per model: a Box would only add indirection
#[derive(Module, Debug)]
pub enum PromptNet {
    Lstm(LstmHead),
    Mlp(MlpHead),
}

#[derive(Module, Debug)]
pub struct PromptEncoder {
    /// `[P, H]`: the encoder's input.
    pub embedding: Param<Tensor<2>>,
    pub net: PromptNet,
    #[module(skip)]
    pub pool: PromptPool,
}

/// PyTorch's `nn.Linear` start: weight and bias U(±1/√d_in).
fn torch_linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let bound = 1.0 / (d_in as f64).sqrt();
    let uniform = Initializer::Uniform {
        min: -bound,
        max: bound,
    };
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(uniform.clone())
        .init(device);
    linear.bias = Some(uniform.init([d_out], device));
    linear
}

impl PromptEncoder {
    /// A new encoder of `prompt_len` prompts for a model of width `model_hidden`: a `kind`
    /// network of width `hidden` (`None`: `PromptEncoderKind::default_hidden`).
    pub fn new(
        (prompt_len, model_hidden): (usize, usize),
        (kind, hidden): (PromptEncoderKind, Option<usize>),
        pool: PromptPool,
        device: &Device,
    ) -> Self {
        let hidden = hidden.unwrap_or(kind.default_hidden(model_hidden));
        let standard = Initializer::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let net = match kind {
            PromptEncoderKind::Lstm => {
                let bound = 1.0 / (hidden as f64).sqrt();
                let lstm = |d_input| {
                    BiLstmConfig::new(d_input, hidden, true)
                        .with_initializer(Initializer::Uniform {
                            min: -bound,
                            max: bound,
                        })
                        .init(device)
                };
                PromptNet::Lstm(LstmHead {
                    layers: (0..LSTM_LAYERS)
                        .map(|l| lstm(if l == 0 { model_hidden } else { 2 * hidden }))
                        .collect(),
                    dense_in: torch_linear(2 * hidden, 2 * hidden, device),
                    dense_out: torch_linear(2 * hidden, model_hidden, device),
                })
            }
            PromptEncoderKind::Mlp => PromptNet::Mlp(MlpHead {
                dense_in: torch_linear(model_hidden, hidden, device),
                dense_mid: torch_linear(hidden, hidden, device),
                dense_out: torch_linear(hidden, model_hidden, device),
            }),
        };
        Self {
            embedding: standard.init([prompt_len, model_hidden], device),
            net,
            pool,
        }
    }

    pub fn prompt_len(&self) -> usize {
        self.embedding.dims()[0]
    }

    /// The prompts `[P, H]`: the embeddings through the encoder.
    pub fn output(&self) -> Tensor<2> {
        let x = self.embedding.val();
        match &self.net {
            PromptNet::Lstm(head) => {
                let mut seq: Tensor<3> = x.unsqueeze();
                for layer in &head.layers {
                    seq = layer.forward(seq, None).0;
                }
                let seq: Tensor<2> = seq.squeeze_dim(0);
                head.dense_out.forward(relu(head.dense_in.forward(seq)))
            }
            PromptNet::Mlp(head) => {
                let x = relu(head.dense_in.forward(x));
                let x = relu(head.dense_mid.forward(x));
                head.dense_out.forward(x)
            }
        }
    }

    /// One `[1, P, H]` tensor broadcast over the batch by the encoder, as PT's prompts.
    pub fn prompts(&self) -> Prompts {
        Prompts {
            input: Some(self.output().unsqueeze()),
            pool_first_prompt: self.pool == PromptPool::First,
            ..Prompts::none()
        }
    }

    /// The encoder's output as PT's plain prompts: what is saved after training.
    pub fn collapse(&self) -> PromptTuning {
        PromptTuning {
            embedding: Param::from_tensor(self.output().detach()),
            pool: self.pool,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encoders_make_prompts_of_the_model_width_and_collapse_to_them() {
        let device = Device::flex();
        for kind in [PromptEncoderKind::Lstm, PromptEncoderKind::Mlp] {
            let encoder = PromptEncoder::new((3, 8), (kind, Some(4)), PromptPool::First, &device);
            let out = encoder.output();
            assert_eq!(out.dims(), [3, 8]);
            let collapsed = encoder.collapse();
            assert_eq!(collapsed.embedding.val().into_data(), out.into_data());
            assert_eq!(collapsed.pool, PromptPool::First);
        }
        assert_eq!(PromptEncoderKind::parse("MLP"), Ok(PromptEncoderKind::Mlp));
        assert!(PromptEncoderKind::parse("gru").is_err());
        assert_eq!(PromptEncoderKind::Lstm.default_hidden(384), 192);
    }
}
