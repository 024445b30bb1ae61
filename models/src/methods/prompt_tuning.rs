//! PT — prompt tuning (Lester et al. 2021): `P` trainable vectors stand in for word embeddings
//! before the real tokens, then one ordinary embedding pass (positions, token type 0, LayerNorm,
//! dropout). Input layer only; the backbone is frozen. This is PEFT's formulation, not the THUDM
//! `--prompt` code's double-embedding quirk (reference notes §1.9).

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::facts::{MethodFacts, PromptPlace, Trains, HEAD_PATHS};
use crate::encoder::Prompts;

pub const FACTS: MethodFacts = MethodFacts {
    name: "pt",
    short: "PT",
    label: "PT (prompt tuning)",
    about: "prompt tuning (Lester et al.): trainable prompts at the input, backbone frozen",
    color: (31, 119, 180),
    prompts: PromptPlace::Input,
    freezes_backbone: true,
    trains: Trains::Matching(&[r"^adapter\.", HEAD_PATHS]),
    shares_served_backbone: true,
    peft_type: Some("PROMPT_TUNING"),
};

/// Where a PT model's sequence head reads: the real `[CLS]` (`cls`: ptv2 and the paper's code) or
/// the first prompt (`first`: PEFT's `BertForSequenceClassification`, whose pooler reads position
/// 0 of prompts + tokens), so that PEFT's PT adapters predict here what they predict there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PromptPool {
    #[default]
    Cls,
    First,
}

impl PromptPool {
    pub fn is_cls(&self) -> bool {
        *self == Self::Cls
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "cls" => Ok(Self::Cls),
            "first" => Ok(Self::First),
            _ => Err(format!("prompt pool \"{text}\": expected cls or first")),
        }
    }
}

impl std::fmt::Display for PromptPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cls => "cls",
            Self::First => "first",
        })
    }
}

crate::text_form!(PromptPool);

/// New prompts: `prompt_len` vectors of size `hidden`.
#[derive(Config, Debug)]
pub struct PromptTuningConfig {
    pub prompt_len: usize,
    pub hidden: usize,
    /// HF `initializer_range`.
    #[config(default = 0.02)]
    pub init_std: f64,
}

impl PromptTuningConfig {
    /// HF `_init_weights` for a new embedding: N(0, init_std).
    pub fn init(&self, device: &Device) -> PromptTuning {
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.init_std,
        };
        PromptTuning {
            embedding: normal.init([self.prompt_len, self.hidden], device),
            pool: PromptPool::Cls,
        }
    }

    /// Prompts that start from given vectors `[P, hidden]` (real tokens' word embeddings).
    pub fn init_with(&self, initial: Tensor<2>) -> PromptTuning {
        assert_eq!(initial.dims(), [self.prompt_len, self.hidden]);
        PromptTuning {
            embedding: Param::from_tensor(initial),
            pool: PromptPool::Cls,
        }
    }
}

#[derive(Module, Debug)]
pub struct PromptTuning {
    /// `[P, hidden]`
    pub embedding: Param<Tensor<2>>,
    #[module(skip)]
    pub pool: PromptPool,
}

impl PromptTuning {
    pub fn prompt_len(&self) -> usize {
        self.embedding.dims()[0]
    }

    /// One `[1, P, hidden]` tensor broadcast over the batch by the encoder.
    pub fn prompts(&self) -> Prompts {
        Prompts {
            input: Some(self.embedding.val().unsqueeze()),
            pool_first_prompt: self.pool == PromptPool::First,
            ..Prompts::none()
        }
    }
}
