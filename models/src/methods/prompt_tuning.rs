//! PT — prompt tuning (Lester et al. 2021): `P` trainable vectors stand in for word embeddings
//! before the real tokens, then one ordinary embedding pass (positions, token type 0, LayerNorm,
//! dropout). Input layer only; the backbone is frozen. This is PEFT's formulation, not the THUDM
//! `--prompt` code's double-embedding quirk (reference notes §1.9).

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Tensor};

use crate::bert::Prompts;

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
        }
    }

    /// Prompts that start from given vectors `[P, hidden]` (real tokens' word embeddings).
    pub fn init_with(&self, initial: Tensor<2>) -> PromptTuning {
        assert_eq!(initial.dims(), [self.prompt_len, self.hidden]);
        PromptTuning {
            embedding: Param::from_tensor(initial),
        }
    }
}

#[derive(Module, Debug)]
pub struct PromptTuning {
    /// `[P, hidden]`
    pub embedding: Param<Tensor<2>>,
}

impl PromptTuning {
    pub fn prompt_len(&self) -> usize {
        self.embedding.dims()[0]
    }

    /// One `[1, P, hidden]` tensor broadcast over the batch by the encoder.
    pub fn prompts(&self) -> Prompts {
        Prompts {
            input: Some(self.embedding.val().unsqueeze()),
            ..Prompts::none()
        }
    }
}
