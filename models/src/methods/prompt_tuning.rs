//! PT — prompt tuning (Lester et al. 2021): `P` trainable vectors stand in for word embeddings
//! before the real tokens, then one ordinary embedding pass (positions, token type 0, LayerNorm,
//! dropout). Input layer only; the backbone is frozen. This is PEFT's formulation, not the THUDM
//! `--prompt` code's double-embedding quirk (reference notes §1.9).

use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Tensor};

use crate::bert::Prompts;

#[derive(Module, Debug)]
pub struct PromptTuning {
    /// `[P, hidden]`
    pub embedding: Param<Tensor<2>>,
}

impl PromptTuning {
    /// HF `_init_weights` for a new embedding: N(0, initializer_range).
    pub fn init(prompt_len: usize, hidden: usize, std: f64, device: &Device) -> Self {
        Self {
            embedding: Initializer::Normal { mean: 0.0, std }.init([prompt_len, hidden], device),
        }
    }

    /// Prompts that start from given vectors `[P, hidden]` (real tokens' word embeddings).
    pub fn from_tensor(initial: Tensor<2>) -> Self {
        Self {
            embedding: Param::from_tensor(initial),
        }
    }

    pub fn prompt_len(&self) -> usize {
        self.embedding.dims()[0]
    }

    /// One `[1, P, hidden]` tensor broadcast over the batch by the encoder.
    pub fn prompts(&self) -> Prompts {
        Prompts {
            input: Some(self.embedding.val().unsqueeze()),
            layers: vec![],
        }
    }
}
