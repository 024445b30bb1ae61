//! PT2 — P-tuning v2 (Liu et al. 2022): trainable key/value prefixes at every layer (or a chosen
//! subset) of a frozen encoder.
//!
//! The prefix is a `[P, L·2·H]` matrix in the THUDM/PEFT flat layout `[layer][k|v][head][head_dim]`,
//! either a plain embedding or reparameterized by an MLP (Embedding(P,H) → Linear(H,h) → tanh →
//! Linear(h, L·2·H)), which `collapse` folds back into a plain prefix for saving. Dropout is applied
//! to the prefix per example after the batch broadcast, as the reference code does (notes §1.2).

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::facts::{MethodFacts, PromptPlace, Trains, HEAD_PATHS};
use crate::encoder::{KvPrefix, Prompts};

pub const FACTS: MethodFacts = MethodFacts {
    name: "pt2",
    short: "PT2",
    label: "PT2 (P-tuning v2)",
    about: "P-tuning v2: trainable key/value prefixes at every layer, backbone frozen",
    color: (214, 39, 40),
    prompts: PromptPlace::EveryLayer,
    freezes_backbone: true,
    trains: Trains::Matching(&[r"^adapter\.", HEAD_PATHS]),
    shares_served_backbone: true,
    peft_type: Some("PREFIX_TUNING"),
};

/// Which layers get a prefix (the paper's depth ablation). Layers left out get no K/V columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(into = "String", try_from = "String")]
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

crate::text_form!(LayerSelection);

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
    pub(crate) embedding: Param<Tensor<2>>,
    pub(crate) dense_in: Linear,
    pub(crate) dense_out: Linear,
}

/// What a prefix trains: the flat prefix itself, or Li & Liang's MLP that produces it.
#[allow(clippy::large_enum_variant)] // one per model or batch: a Box would only add indirection
#[derive(Module, Debug)]
pub enum PrefixParams {
    /// `[P, L_sel·2·H]`
    Plain(Param<Tensor<2>>),
    Reparameterized(PrefixMlp),
}

#[derive(Module, Debug)]
pub struct PrefixEncoder {
    pub(crate) params: PrefixParams,
    pub(crate) dropout: Dropout,
    /// Indices of the prefixed layers, ascending; stored so a checkpoint knows its layout.
    pub(crate) layers: Vec<usize>,
    pub(crate) num_layers: usize,
    pub(crate) num_heads: usize,
}

fn normal_linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    linear.bias = Some(Initializer::Zeros.init([d_out], device));
    linear
}

/// A new P-tuning v2 prefix for an encoder of `num_layers` layers, `num_heads` heads, `hidden`.
#[derive(Config, Debug)]
pub struct PrefixEncoderConfig {
    pub prompt_len: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub hidden: usize,
    /// Which layers get a prefix.
    #[config(default = "LayerSelection::All")]
    pub layers: LayerSelection,
    /// Train the prefix through an MLP of this hidden size.
    pub reparam_hidden: Option<usize>,
    /// Per-example dropout on the prefix (the script's `hidden_dropout_prob`).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// HF `initializer_range` (PEFT would use N(0, 1)).
    #[config(default = 0.02)]
    pub init_std: f64,
}

impl PrefixEncoderConfig {
    /// `[P, L_sel·2·H]`: the flat prefix's shape.
    pub fn flat_shape(&self) -> [usize; 2] {
        let layers = self.layers.layers(self.num_layers).len();
        [self.prompt_len, layers * 2 * self.hidden]
    }

    /// A random prefix, N(0, init_std) as HF `_init_weights` does.
    pub fn init(&self, device: &Device) -> PrefixEncoder {
        let std = self.init_std;
        let normal = Initializer::Normal { mean: 0.0, std };
        let params = match self.reparam_hidden {
            None => PrefixParams::Plain(normal.init(self.flat_shape(), device)),
            Some(h) => PrefixParams::Reparameterized(PrefixMlp {
                embedding: normal.init([self.prompt_len, self.hidden], device),
                dense_in: normal_linear(self.hidden, h, std, device),
                dense_out: normal_linear(h, self.flat_shape()[1], std, device),
            }),
        };
        self.with_params(params)
    }

    /// A plain prefix that starts from given values (real tokens' keys/values). A
    /// reparameterized one cannot: its MLP has no inverse to start from them.
    pub fn init_with(&self, initial: Tensor<2>) -> PrefixEncoder {
        assert!(
            self.reparam_hidden.is_none(),
            "a reparameterized prefix starts random"
        );
        assert_eq!(initial.dims(), self.flat_shape());
        self.with_params(PrefixParams::Plain(Param::from_tensor(initial)))
    }

    fn with_params(&self, params: PrefixParams) -> PrefixEncoder {
        PrefixEncoder {
            params,
            dropout: DropoutConfig::new(self.dropout).init(),
            layers: self.layers.layers(self.num_layers),
            num_layers: self.num_layers,
            num_heads: self.num_heads,
        }
    }
}

impl PrefixEncoder {
    pub fn prompt_len(&self) -> usize {
        self.flat().dims()[0]
    }

    /// The prefix as `[P, L_sel·2·H]`, through the MLP when reparameterized.
    pub fn flat(&self) -> Tensor<2> {
        match &self.params {
            PrefixParams::Plain(prefix) => prefix.val(),
            PrefixParams::Reparameterized(mlp) => mlp
                .dense_out
                .forward(tanh(mlp.dense_in.forward(mlp.embedding.val()))),
        }
    }

    /// The same prefix with these values `[P, L_sel·2·H]` (e.g. read from another tool's
    /// checkpoint), plain.
    pub fn with_flat(self, flat: Tensor<2>) -> Self {
        assert_eq!(flat.dims(), self.flat().dims(), "prefix shape");
        Self {
            params: PrefixParams::Plain(Param::from_tensor(flat)),
            ..self
        }
    }

    pub fn is_reparameterized(&self) -> bool {
        matches!(self.params, PrefixParams::Reparameterized(_))
    }

    /// Fold the MLP into a plain prefix (what is stored after training, as in Li & Liang).
    pub fn collapse(self) -> Self {
        if !self.is_reparameterized() {
            return self;
        }
        let flat = self.flat();
        Self {
            params: PrefixParams::Plain(Param::from_tensor(flat)),
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
            layers,
            ..Prompts::none()
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
        let prefix = PrefixEncoderConfig::new(3, 2, 2, 8)
            .with_reparam_hidden(Some(5))
            .with_dropout(0.0)
            .init(&device);
        let before = prefix.flat().into_data();
        let collapsed = prefix.collapse();
        assert!(!collapsed.is_reparameterized());
        assert_eq!(collapsed.flat().into_data(), before);
    }

    #[test]
    fn unselected_layers_get_no_prefix() {
        let device = Device::flex();
        let prefix = PrefixEncoderConfig::new(3, 4, 2, 8)
            .with_layers(LayerSelection::Top(1))
            .with_dropout(0.0)
            .init(&device);
        let prompts = prefix.prompts(2);
        let present: Vec<bool> = prompts.layers.iter().map(Option::is_some).collect();
        assert_eq!(present, vec![false, false, false, true]);
        assert_eq!(prompts.layers[3].as_ref().unwrap().key.dims(), [1, 2, 3, 4]);
    }
}
