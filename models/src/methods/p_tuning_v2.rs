//! PT2 — P-tuning v2 (Liu et al. 2022): trainable key/value prefixes at every layer (or a chosen
//! subset) of a frozen encoder.
//!
//! The prefix is a `[P, L·2·H]` matrix in the THUDM/PEFT flat layout `[layer][k|v][head][head_dim]`,
//! either a plain embedding or reparameterized by an MLP (Embedding(P,H) → Linear(H,h) → tanh →
//! Linear(h, L·2·H)), which `collapse` folds back into a plain prefix for saving. Dropout is applied
//! to the prefix per example after the batch broadcast, as the reference code does (notes §1.2).

use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::bert::{KvPrefix, Prompts};

/// Which layers get a prefix (the paper's depth ablation). Layers left out get no K/V columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LayerSelection {
    #[default]
    All,
    /// The bottom `k` layers (ascending order in the paper).
    Bottom(usize),
    /// The top `k` layers (descending order in the paper).
    Top(usize),
}

impl LayerSelection {
    /// The selected layer indices of an `num_layers`-layer encoder, ascending.
    pub fn layers(&self, num_layers: usize) -> Vec<usize> {
        match *self {
            Self::All => (0..num_layers).collect(),
            Self::Bottom(k) => (0..k.min(num_layers)).collect(),
            Self::Top(k) => (num_layers - k.min(num_layers)..num_layers).collect(),
        }
    }

    /// Parse `all`, `bottom:K` or `top:K`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("layer selection \"{text}\": expected all, bottom:K or top:K");
        match text.split_once(':') {
            None if text == "all" => Ok(Self::All),
            Some(("bottom", k)) => k.parse().map(Self::Bottom).map_err(|_| bad()),
            Some(("top", k)) => k.parse().map(Self::Top).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for LayerSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => write!(f, "all"),
            Self::Bottom(k) => write!(f, "bottom:{k}"),
            Self::Top(k) => write!(f, "top:{k}"),
        }
    }
}

/// Li & Liang's reparameterization MLP.
#[derive(Module, Debug)]
pub struct PrefixMlp {
    /// `[P, H]`
    pub embedding: Param<Tensor<2>>,
    pub dense_in: Linear,
    pub dense_out: Linear,
}

#[derive(Module, Debug)]
pub struct PrefixEncoder {
    /// `[P, L_sel·2·H]` when not reparameterized.
    pub embedding: Option<Param<Tensor<2>>>,
    pub mlp: Option<PrefixMlp>,
    pub dropout: Dropout,
    /// Indices of the prefixed layers, ascending; stored so a checkpoint knows its layout.
    pub layers: Vec<usize>,
    pub num_layers: usize,
    pub num_heads: usize,
}

fn normal_linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    linear.bias = Some(Initializer::Zeros.init([d_out], device));
    linear
}

/// Shapes of a P-tuning v2 prefix for one encoder.
#[derive(Debug, Clone)]
pub struct PrefixShape {
    pub prompt_len: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub hidden: usize,
}

impl PrefixEncoder {
    /// New prefix: `initial` (`[P, L_sel·2·H]`, e.g. real tokens' keys/values) when given, else
    /// N(0, std) as HF `_init_weights` does (PEFT would use N(0, 1)). A reparameterized prefix
    /// always starts random: its MLP has no inverse to start from given values.
    pub fn init(
        shape: &PrefixShape,
        selection: &LayerSelection,
        reparam_hidden: Option<usize>,
        initial: Option<Tensor<2>>,
        dropout: f64,
        std: f64,
        device: &Device,
    ) -> Self {
        let layers = selection.layers(shape.num_layers);
        let width = layers.len() * 2 * shape.hidden;
        let normal = Initializer::Normal { mean: 0.0, std };
        let (embedding, mlp) = match reparam_hidden {
            None => (
                Some(initial.map_or_else(
                    || normal.init([shape.prompt_len, width], device),
                    Param::from_tensor,
                )),
                None,
            ),
            Some(h) => (
                None,
                Some(PrefixMlp {
                    embedding: normal.init([shape.prompt_len, shape.hidden], device),
                    dense_in: normal_linear(shape.hidden, h, std, device),
                    dense_out: normal_linear(h, width, std, device),
                }),
            ),
        };
        Self {
            embedding,
            mlp,
            dropout: DropoutConfig::new(dropout).init(),
            layers,
            num_layers: shape.num_layers,
            num_heads: shape.num_heads,
        }
    }

    pub fn prompt_len(&self) -> usize {
        self.flat().dims()[0]
    }

    /// The prefix as `[P, L_sel·2·H]`, through the MLP when reparameterized.
    pub fn flat(&self) -> Tensor<2> {
        match (&self.embedding, &self.mlp) {
            (Some(embedding), _) => embedding.val(),
            (None, Some(mlp)) => mlp
                .dense_out
                .forward(tanh(mlp.dense_in.forward(mlp.embedding.val()))),
            (None, None) => unreachable!("a prefix encoder has an embedding or an MLP"),
        }
    }

    /// Fold the MLP into a plain prefix (what is stored after training, as in Li & Liang).
    pub fn collapse(self) -> Self {
        if self.mlp.is_none() {
            return self;
        }
        let flat = self.flat();
        Self {
            embedding: Some(Param::from_tensor(flat)),
            mlp: None,
            ..self
        }
    }

    /// Per-layer K/V for a batch. Without dropout the prefix stays one tensor broadcast over the
    /// batch; with dropout each example gets its own mask, as in the reference code.
    pub fn prompts(&self, batch: usize) -> Prompts {
        let flat = self.flat();
        let [p, width] = flat.dims();
        let flat: Tensor<3> = flat.unsqueeze();
        let flat = if self.dropout.prob > 0.0 && flat.device().is_autodiff() {
            crate::dropout::apply(&self.dropout, flat.expand([batch, p, width]))
        } else {
            flat
        };
        let per_layer = KvPrefix::split_flat(flat, self.layers.len(), self.num_heads);
        let mut layers: Vec<Option<KvPrefix>> = (0..self.num_layers).map(|_| None).collect();
        for (index, kv) in self.layers.iter().zip(per_layer) {
            layers[*index] = Some(kv);
        }
        Prompts {
            input: None,
            layers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_selection_parses_and_selects() {
        assert_eq!(
            LayerSelection::parse("all").unwrap().layers(4),
            vec![0, 1, 2, 3]
        );
        assert_eq!(
            LayerSelection::parse("bottom:2").unwrap().layers(4),
            vec![0, 1]
        );
        assert_eq!(
            LayerSelection::parse("top:3").unwrap().layers(4),
            vec![1, 2, 3]
        );
        assert!(LayerSelection::parse("middle:2").is_err());
        assert_eq!(LayerSelection::Top(3).to_string(), "top:3");
    }

    #[test]
    fn collapse_keeps_the_prefix_values() {
        let device = Device::flex();
        let shape = PrefixShape {
            prompt_len: 3,
            num_layers: 2,
            num_heads: 2,
            hidden: 8,
        };
        let prefix = PrefixEncoder::init(
            &shape,
            &LayerSelection::All,
            Some(5),
            None,
            0.0,
            0.02,
            &device,
        );
        let before = prefix.flat().into_data();
        let collapsed = prefix.collapse();
        assert!(collapsed.mlp.is_none());
        assert_eq!(collapsed.flat().into_data(), before);
    }

    #[test]
    fn unselected_layers_get_no_prefix() {
        let device = Device::flex();
        let shape = PrefixShape {
            prompt_len: 3,
            num_layers: 4,
            num_heads: 2,
            hidden: 8,
        };
        let prefix = PrefixEncoder::init(
            &shape,
            &LayerSelection::Top(1),
            None,
            None,
            0.0,
            0.02,
            &device,
        );
        let prompts = prefix.prompts(2);
        let present: Vec<bool> = prompts.layers.iter().map(Option::is_some).collect();
        assert_eq!(present, vec![false, false, false, true]);
        assert_eq!(prompts.layers[3].as_ref().unwrap().key.dims(), [1, 2, 3, 4]);
    }
}
