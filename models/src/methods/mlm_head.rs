//! The masked-LM head a pretrained checkpoint was trained with, loaded from its HF dir: what
//! discrete prompting reads (the probability of each label word at a `[MASK]`).
//!
//! All three families compute `LayerNorm(gelu(dense(h))) · Eᵀ + b`, the decoder tied to the word
//! embeddings `E` (transformers 4.46 saves only the encoder's copy). Their names:
//! BERT and DeBERTa-v2/v3 `cls.predictions.transform.{dense,LayerNorm}.*` and
//! `cls.predictions.bias`; RoBERTa `lm_head.{dense,layer_norm}.*` and `lm_head.bias`.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::store::{PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use crate::config::{EncoderConfig, ModelFamily};
use crate::encoder::load::{read_safetensors, regex_escape};
use crate::error::ModelError;

#[derive(Module, Debug)]
pub struct MlmHead {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
    /// `[V]`: the output bias; the output weight is the word embeddings.
    pub bias: Param<Tensor<1>>,
}

/// (HF name prefix, module path) of the head's parts in a family's checkpoint.
fn names(family: ModelFamily) -> [(&'static str, &'static str); 3] {
    match family {
        ModelFamily::Roberta => [
            ("lm_head.dense.", "dense."),
            ("lm_head.layer_norm.", "layer_norm."),
            ("lm_head.bias", "bias"),
        ],
        ModelFamily::Bert | ModelFamily::DebertaV2 => [
            ("cls.predictions.transform.dense.", "dense."),
            ("cls.predictions.transform.LayerNorm.", "layer_norm."),
            ("cls.predictions.bias", "bias"),
        ],
    }
}

/// The tensors the head needs, in the checkpoint's names.
fn needed(family: ModelFamily) -> Vec<String> {
    let [(dense, _), (norm, _), (bias, _)] = names(family);
    vec![
        format!("{dense}weight"),
        format!("{dense}bias"),
        format!("{norm}weight"),
        format!("{norm}bias"),
        bias.to_string(),
    ]
}

impl MlmHead {
    /// A head of random weights (for tests and shapes).
    pub fn init(config: &EncoderConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            dense: LinearConfig::new(h, h).init(device),
            layer_norm: LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device),
            bias: Param::from_tensor(Tensor::zeros([config.vocab_size], device)),
        }
    }

    /// The head of the checkpoint `path` (a `…ForMaskedLM` model.safetensors). A checkpoint
    /// without one (a sentence-embedding or task model) is one error naming what it lacks.
    pub fn load(config: &EncoderConfig, path: &Path, device: &Device) -> Result<Self, ModelError> {
        let (bytes, present) = read_safetensors(path)?;
        let missing: Vec<String> = needed(config.family())
            .into_iter()
            .filter(|name| !present.contains_key(name))
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::DoesNotFit {
                path: path.to_path_buf(),
                message: format!(
                    "no masked-LM head: {} missing (a sentence-embedding or task checkpoint has none, the embedded minilm-l6 among them; discrete prompting and the verbalizer head need a …ForMaskedLM checkpoint such as bert-base-uncased or roberta-base)",
                    missing.join(", ")
                ),
            });
        }
        let mut store = SafetensorsStore::from_bytes(Some(bytes))
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true);
        for (from, to) in names(config.family()) {
            let from = format!("^{}", regex_escape(from));
            let from = if to == "bias" {
                format!("{from}$")
            } else {
                from
            };
            store = store.with_key_remapping(from, to);
        }
        let mut head = Self::init(config, device);
        let result = crate::encoder::load::apply_store(&mut head, &mut store, path)?;
        if let Some((name, _)) = result.missing.first() {
            return Err(ModelError::BadWeights {
                path: path.to_path_buf(),
                message: format!("masked-LM head parameter {name} not loaded"),
            });
        }
        Ok(head.no_grad())
    }

    /// `LayerNorm(gelu(dense(h)))`: the states the decoder reads.
    pub fn transform<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        self.layer_norm.forward(gelu(self.dense.forward(hidden)))
    }

    /// Scores over the vocabulary `[B, S, V]` of hidden states `[B, S, H]`, the decoder being
    /// the word embeddings `[V, H]`.
    pub fn forward(&self, hidden: Tensor<3>, word_embeddings: Tensor<2>) -> Tensor<3> {
        let [batch, seq, width] = hidden.dims();
        let x = self.transform(hidden);
        let x: Tensor<2> = x.reshape([batch * seq, width]);
        let scores = x.matmul(word_embeddings.transpose()) + self.bias.val().unsqueeze();
        let vocab = scores.dims()[1];
        scores.reshape([batch, seq, vocab])
    }
}
