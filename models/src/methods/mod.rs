//! The tuning methods side by side, all injected through the encoder's one seam (`Prompts`):
//!
//! - **FT** — full fine-tuning: nothing injected, nothing frozen.
//! - **PT** — prompt tuning (`prompt_tuning.rs`): input-layer prompts, backbone frozen.
//! - **P-tuning** (`p_tuning.rs`): input-layer prompts made by a prompt encoder (LSTM or MLP)
//!   over trainable embeddings, backbone frozen; saved as PT's prompts.
//! - **PT2** — P-tuning v2 (`p_tuning_v2.rs`): per-layer K/V prefixes, backbone frozen.
//! - **Prefix-tuning** (`prefix_tuning.rs`): PT2 trained through Li & Liang's MLP, by its name.
//! - **LoRA** (`lora.rs`): low-rank updates of the attention projections, backbone frozen. It is
//!   the one method that works inside the encoder's weights (burn's reparameterization) rather
//!   than through `Prompts`: its update belongs to the weight, and merges into it for inference.
//!
//! Under every method the task head is trainable. Frozen parameters have `require_grad = false`,
//! so autodiff computes no weight gradients for them and the optimizer keeps no state for them.

pub mod discrete_prompting;
pub mod facts;
pub mod fine_tuning;
pub mod heads;
pub mod lora;
pub mod loss;
pub mod mixed;
pub mod mlm_head;
pub mod options;
pub mod p_tuning;
pub mod p_tuning_v2;
pub mod prefix_tuning;
pub mod prompt_tuning;
pub mod registry;
pub mod verbalizer;

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::encoder::{Encoder, EncoderInput, Prompts};
use crate::error::ModelError;
use crate::methods::heads::{HeadConfig, HeadKind, Logits, TaskHead};
use crate::precision::Precision;
pub use facts::{MethodFacts, PromptPlace, Trains, HEAD_PATHS};
use lora::LoraTargets;
pub use options::{MethodOptions, PromptInit, LORA_ALPHA, LORA_RANK};
use p_tuning::PromptEncoder;
pub use p_tuning::PromptEncoderKind;
use p_tuning_v2::{LayerSelection, PrefixEncoder, PrefixEncoderConfig};
pub use prompt_tuning::PromptPool;
use prompt_tuning::{PromptTuning, PromptTuningConfig};
pub use registry::MethodKind;
use verbalizer::VerbalizerHead;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// Discrete prompting: nothing added, nothing trained (the verbalizer head reads the
    /// checkpoint's masked-LM head).
    Prompt,
    Ft,
    Pt {
        prompt_len: usize,
        #[serde(
            default,
            rename = "prompt_init",
            skip_serializing_if = "PromptInit::is_random"
        )]
        init: PromptInit,
        #[serde(
            default,
            rename = "prompt_pool",
            skip_serializing_if = "PromptPool::is_cls"
        )]
        pool: PromptPool,
    },
    Ptuning {
        prompt_len: usize,
        #[serde(default, rename = "ptuning_encoder")]
        encoder: PromptEncoderKind,
        /// The prompt encoder's hidden size; `None`: `PromptEncoderKind::default_hidden`.
        #[serde(default, rename = "reparam_hidden")]
        hidden: Option<usize>,
        #[serde(
            default,
            rename = "prompt_pool",
            skip_serializing_if = "PromptPool::is_cls"
        )]
        pool: PromptPool,
    },
    Pt2 {
        prompt_len: usize,
        /// Hidden size of the reparameterization MLP; `None` trains the prefix directly.
        #[serde(default)]
        reparam_hidden: Option<usize>,
        #[serde(default)]
        layers: LayerSelection,
        #[serde(
            default,
            rename = "prefix_init",
            skip_serializing_if = "PromptInit::is_random"
        )]
        init: PromptInit,
        /// Dropout on the prefix; `None` takes the run's dropout (THUDM's code), `Some(0.0)`
        /// none (PEFT).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix_dropout: Option<f64>,
    },
    Prefix {
        prompt_len: usize,
        /// The MLP's hidden size; `None`: Li & Liang's 512.
        #[serde(default, rename = "reparam_hidden")]
        hidden: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix_dropout: Option<f64>,
    },
    Lora {
        #[serde(rename = "lora_rank")]
        rank: usize,
        #[serde(rename = "lora_alpha")]
        alpha: f64,
        #[serde(rename = "lora_targets")]
        targets: LoraTargets,
    },
}

impl Method {
    /// PT2 with P prompts: a plain prefix on every layer, started as THUDM's code starts it.
    pub fn pt2(prompt_len: usize) -> Self {
        Self::Pt2 {
            prompt_len,
            reparam_hidden: None,
            layers: LayerSelection::All,
            init: PromptInit::Random,
            prefix_dropout: None,
        }
    }

    /// The method of these options; options it does not have are ignored.
    pub fn from_options(o: &MethodOptions) -> Result<Self, String> {
        Ok(match o.method {
            MethodKind::Prompt => Self::Prompt,
            MethodKind::Ft => Self::Ft,
            MethodKind::Pt => Self::Pt {
                prompt_len: o.prompt_len,
                init: o.prompt_init.clone(),
                pool: o.prompt_pool,
            },
            MethodKind::Ptuning => Self::Ptuning {
                prompt_len: o.prompt_len,
                encoder: o.ptuning_encoder,
                hidden: o.reparam_hidden,
                pool: o.prompt_pool,
            },
            MethodKind::Pt2 => {
                if o.reparam_hidden.is_some() && !matches!(o.prefix_init, PromptInit::Random) {
                    return Err(format!("prefix_init {} needs a plain prefix: a reparameterized one (reparam_hidden) starts random", o.prefix_init));
                }
                Self::Pt2 {
                    prompt_len: o.prompt_len,
                    reparam_hidden: o.reparam_hidden,
                    layers: o.prefix_layers.clone(),
                    init: o.prefix_init.clone(),
                    prefix_dropout: o.prefix_dropout,
                }
            }
            MethodKind::Prefix => Self::Prefix {
                prompt_len: o.prompt_len,
                hidden: o.reparam_hidden,
                prefix_dropout: o.prefix_dropout,
            },
            MethodKind::Lora => Self::Lora {
                rank: o.lora_rank,
                alpha: o.lora_alpha,
                targets: o.lora_targets.clone(),
            },
        })
    }

    /// The method's options, the ones it does not have at their neutral values.
    pub fn options(&self) -> MethodOptions {
        let neutral = MethodOptions::neutral(self.kind());
        match self {
            Self::Prompt | Self::Ft => neutral,
            Self::Pt {
                prompt_len,
                init,
                pool,
            } => MethodOptions {
                prompt_len: *prompt_len,
                prompt_init: init.clone(),
                prompt_pool: *pool,
                ..neutral
            },
            Self::Ptuning {
                prompt_len,
                encoder,
                hidden,
                pool,
            } => MethodOptions {
                prompt_len: *prompt_len,
                ptuning_encoder: *encoder,
                reparam_hidden: *hidden,
                prompt_pool: *pool,
                ..neutral
            },
            Self::Pt2 {
                prompt_len,
                reparam_hidden,
                layers,
                init,
                prefix_dropout,
            } => MethodOptions {
                prompt_len: *prompt_len,
                reparam_hidden: *reparam_hidden,
                prefix_layers: layers.clone(),
                prefix_init: init.clone(),
                prefix_dropout: *prefix_dropout,
                ..neutral
            },
            // PT2's options with prefix-tuning's name and its own (unset) width.
            Self::Prefix { hidden, .. } => MethodOptions {
                method: MethodKind::Prefix,
                reparam_hidden: *hidden,
                ..self.as_pt2().options()
            },
            Self::Lora {
                rank,
                alpha,
                targets,
            } => MethodOptions {
                lora_rank: *rank,
                lora_alpha: *alpha,
                lora_targets: targets.clone(),
                ..neutral
            },
        }
    }

    pub fn kind(&self) -> MethodKind {
        match self {
            Self::Prompt => MethodKind::Prompt,
            Self::Ft => MethodKind::Ft,
            Self::Pt { .. } => MethodKind::Pt,
            Self::Ptuning { .. } => MethodKind::Ptuning,
            Self::Pt2 { .. } => MethodKind::Pt2,
            Self::Prefix { .. } => MethodKind::Prefix,
            Self::Lora { .. } => MethodKind::Lora,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The method's own options beside P, the init and the pool, as `key=value` words for
    /// listings (`layers=top:2 reparam=512`, `r=8 alpha=8 targets=q,v`); a PT2 prefix on all
    /// layers says nothing.
    pub fn details(&self) -> String {
        match self {
            Self::Prompt | Self::Ft | Self::Pt { .. } => String::new(),
            Self::Prefix { hidden, .. } => {
                hidden.map(|h| format!("hidden={h}")).unwrap_or_default()
            }
            Self::Ptuning {
                encoder, hidden, ..
            } => {
                let hidden = hidden.map(|h| format!(" hidden={h}")).unwrap_or_default();
                format!("encoder={encoder}{hidden}")
            }
            Self::Pt2 {
                layers,
                reparam_hidden,
                ..
            } => {
                let layers = (*layers != LayerSelection::All).then(|| format!("layers={layers}"));
                let reparam = reparam_hidden.map(|h| format!("reparam={h}"));
                [layers, reparam]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            Self::Lora {
                rank,
                alpha,
                targets,
            } => format!("r={rank} alpha={alpha} targets={targets}"),
        }
    }

    pub fn prompt_len(&self) -> usize {
        match self {
            Self::Prompt | Self::Ft | Self::Lora { .. } => 0,
            Self::Pt { prompt_len, .. }
            | Self::Ptuning { prompt_len, .. }
            | Self::Pt2 { prompt_len, .. }
            | Self::Prefix { prompt_len, .. } => *prompt_len,
        }
    }

    /// How the prompts or prefix start (`Random` for FT and LoRA, which have none, and for
    /// P-tuning, whose encoder starts as PyTorch's modules do).
    pub fn init(&self) -> &PromptInit {
        static RANDOM: PromptInit = PromptInit::Random;
        match self {
            Self::Prompt
            | Self::Ft
            | Self::Lora { .. }
            | Self::Ptuning { .. }
            | Self::Prefix { .. } => &RANDOM,
            Self::Pt { init, .. } | Self::Pt2 { init, .. } => init,
        }
    }

    /// The width of the network a prompt trains through, defaults resolved: P-tuning's encoder,
    /// prefix-tuning's MLP, a reparameterized PT2 prefix's MLP (`None` where there is none). PEFT
    /// calls it `encoder_hidden_size`.
    pub fn encoder_hidden(&self, model_hidden: usize) -> Option<usize> {
        match self {
            Self::Ptuning {
                encoder, hidden, ..
            } => Some(hidden.unwrap_or(encoder.default_hidden(model_hidden))),
            Self::Prefix { hidden, .. } => Some(hidden.unwrap_or(prefix_tuning::MLP_HIDDEN)),
            Self::Pt2 { reparam_hidden, .. } => *reparam_hidden,
            Self::Prompt | Self::Ft | Self::Pt { .. } | Self::Lora { .. } => None,
        }
    }

    /// PT2 as prefix-tuning trains it: its prefix through the MLP on every layer.
    pub fn as_pt2(&self) -> Self {
        match self {
            Self::Prefix {
                prompt_len,
                prefix_dropout,
                ..
            } => Self::Pt2 {
                prompt_len: *prompt_len,
                // The model's width does not matter here: prefix-tuning's default is fixed.
                reparam_hidden: self.encoder_hidden(0),
                layers: LayerSelection::All,
                init: PromptInit::Random,
                prefix_dropout: *prefix_dropout,
            },
            other => other.clone(),
        }
    }

    /// The method as stored in a checkpoint: a reparameterized prefix is saved collapsed (and
    /// prefix-tuning's as PT2's), a
    /// P-tuning encoder as the PT prompts it makes, and the init no longer matters once trained
    /// weights are loaded.
    pub fn as_saved(&self) -> Self {
        match self {
            Self::Pt {
                prompt_len, pool, ..
            }
            | Self::Ptuning {
                prompt_len, pool, ..
            } => Self::Pt {
                prompt_len: *prompt_len,
                init: PromptInit::Random,
                pool: *pool,
            },
            Self::Prefix { prompt_len, .. } => Method::pt2(*prompt_len),
            Self::Pt2 {
                prompt_len, layers, ..
            } => Self::Pt2 {
                prompt_len: *prompt_len,
                reparam_hidden: None,
                layers: layers.clone(),
                init: PromptInit::Random,
                prefix_dropout: None,
            },
            Self::Prompt | Self::Ft | Self::Lora { .. } => self.clone(),
        }
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

/// The module paths (enum variants skipped, as checkpoints name them) of trainable tensors.
#[derive(Default)]
struct TrainablePaths {
    path: Vec<String>,
    found: Vec<String>,
}

impl ModuleVisitor for TrainablePaths {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.path.push(name.to_string());
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.path.pop();
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if param.val().is_require_grad() {
            self.found.push(self.path.join("."));
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
    /// For `PromptInit::Vocab`/`Text`: the ids `[CLS] t_1 … t_P [SEP]` (the model's own special
    /// tokens around P real tokens); prompts or prefixes start from the tokens t_1 … t_P.
    pub init_tokens: Option<Vec<i64>>,
    /// The frozen backbone's projections in half precision (`Precision`); FT's stay f32.
    pub precision: Precision,
}

impl Default for MethodInit {
    /// The reference scripts' dropout and HF's `initializer_range`, random starts.
    fn default() -> Self {
        Self {
            dropout: 0.1,
            init_std: 0.02,
            init_tokens: None,
            precision: Precision::F32,
        }
    }
}

/// The frozen encoder's view of the init tokens: their word embeddings `[P, H]` (PT) and each
/// layer's key/value projections `[P, H]` (PT2), computed without dropout.
struct RealTokens {
    input: EncoderInput,
    prompt_len: usize,
}

impl RealTokens {
    fn new(ids: &[i64], encoder: &Encoder) -> Self {
        assert!(ids.len() >= 3, "init tokens need [CLS] t_1 … t_P [SEP]");
        let device = encoder.embeddings.word_embeddings.weight.val().device();
        let row = |values: Vec<i64>| {
            let n = values.len();
            Tensor::<2, Int>::from_data(TensorData::new(values, [1, n]), &device)
        };
        Self {
            input: EncoderInput {
                input_ids: row(ids.to_vec()),
                attention_mask: row(vec![1; ids.len()]),
                token_type_ids: row(vec![0; ids.len()]),
            },
            prompt_len: ids.len() - 2,
        }
    }

    /// `[1, seq, H]` → the real tokens' rows `[P, H]`.
    fn rows(&self, x: Tensor<3>) -> Tensor<2> {
        let hidden = x.dims()[2];
        x.narrow(1, 1, self.prompt_len)
            .reshape([self.prompt_len, hidden])
    }

    fn word_embeddings(&self, encoder: &Encoder) -> Tensor<2> {
        let words = encoder
            .embeddings
            .word_embeddings
            .forward(self.input.input_ids.clone());
        self.rows(words)
    }

    /// The flat prefix `[P, L_sel·2·H]` of the selected layers: `[K_l | V_l]` per layer.
    fn flat_prefix(&self, encoder: &Encoder, layers: &[usize]) -> Tensor<2> {
        let key_values = encoder.key_values(&self.input);
        let parts = layers
            .iter()
            .flat_map(|&l| {
                let (key, value) = &key_values[l];
                [self.rows(key.clone()), self.rows(value.clone())]
            })
            .collect();
        Tensor::cat(parts, 1)
    }
}

/// A tensor computed on the plain device, moved to `device` (autodiff when training).
fn onto(tensor: Tensor<2>, device: &Device) -> Tensor<2> {
    Tensor::from_data(tensor.into_data(), device)
}

/// A deliberately broken PT2 for the nightly check's own test (`PTV2_FAULT=prefix-detached`):
/// the prefix is built and trained but never reaches attention, so only the head learns. The
/// test shows that `just nightly` fails on it; nothing else sets it.
fn prefix_detached() -> bool {
    static DETACHED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DETACHED.get_or_init(|| std::env::var("PTV2_FAULT").is_ok_and(|f| f == "prefix-detached"))
}

/// What a method adds to the encoder (FT adds nothing).
#[allow(clippy::large_enum_variant)] // one per model or batch: a Box would only add indirection
#[derive(Module, Debug)]
pub enum Adapter {
    /// PT: prompts at the input.
    Prompt(PromptTuning),
    /// P-tuning: prompts at the input, made by a prompt encoder.
    PromptEncoder(PromptEncoder),
    /// PT2: a K/V prefix at every (selected) layer.
    Prefix(PrefixEncoder),
}

/// An encoder with a tuning method and a task head.
#[derive(Module, Debug)]
pub struct TunedModel {
    pub encoder: Encoder,
    pub adapter: Option<Adapter>,
    pub head: TaskHead,
    #[module(skip)]
    pub kind: MethodKind,
}

/// Where a checkpoint's tensor names (`prompt.embedding`, `prefix.embedding`; `head.…` and the
/// encoder's are the same) differ from this model's module paths (enum variants skipped):
/// (module path, name in the file).
const CHECKPOINT_NAMES: &[(&str, &str)] = &[
    ("adapter.embedding", "prompt.embedding"),
    ("adapter.params", "prefix.embedding"),
];

/// The pooler's tensors: trained with the head when it is a context pooler, saved with the run
/// whenever it was drawn at random rather than loaded.
const POOLER_PATHS: &str = r"^encoder\.pooler\.";

/// A key-remapping pattern that matches exactly this name.
fn exactly(name: &str) -> String {
    format!("^{}$", name.replace('.', r"\."))
}

/// The real tokens of a `vocab` or `text` init, and the frozen encoder (evaluation mode) that
/// reads them.
fn real_tokens(encoder: &Encoder, init: &MethodInit) -> Option<(RealTokens, Encoder)> {
    init.init_tokens.as_deref().map(|ids| {
        let frozen = encoder.clone().valid();
        (RealTokens::new(ids, &frozen), frozen)
    })
}

/// A new PT, P-tuning or PT2 adapter (FT and LoRA have none).
fn new_adapter(
    encoder: &Encoder,
    method: &Method,
    init: &MethodInit,
    device: &Device,
) -> Option<Adapter> {
    let hidden = encoder.hidden_size();
    match method {
        Method::Prompt | Method::Ft | Method::Lora { .. } => None,
        Method::Ptuning {
            prompt_len,
            encoder: kind,
            hidden: width,
            pool,
        } => Some(Adapter::PromptEncoder(PromptEncoder::new(
            (*prompt_len, hidden),
            (*kind, *width),
            *pool,
            device,
        ))),
        Method::Pt {
            prompt_len, pool, ..
        } => {
            let std = method.init().random_std(init.init_std);
            let config = PromptTuningConfig::new(*prompt_len, hidden).with_init_std(std);
            let start = real_tokens(encoder, init)
                .map(|(tokens, frozen)| onto(tokens.word_embeddings(&frozen), device));
            let prompt = match start {
                Some(start) => config.init_with(start),
                None => config.init(device),
            };
            Some(Adapter::Prompt(PromptTuning {
                pool: *pool,
                ..prompt
            }))
        }
        Method::Pt2 { .. } | Method::Prefix { .. } => {
            new_prefix(encoder, &method.as_pt2(), init, device).map(Adapter::Prefix)
        }
    }
}

/// PT2's new prefix (`None` for another method).
fn new_prefix(
    encoder: &Encoder,
    method: &Method,
    init: &MethodInit,
    device: &Device,
) -> Option<PrefixEncoder> {
    let Method::Pt2 {
        prompt_len,
        reparam_hidden,
        layers,
        prefix_dropout,
        ..
    } = method
    else {
        return None;
    };
    let config = PrefixEncoderConfig::new(
        *prompt_len,
        encoder.num_layers(),
        encoder.num_heads(),
        encoder.hidden_size(),
    )
    .with_layers(layers.clone())
    .with_reparam_hidden(*reparam_hidden)
    .with_dropout(prefix_dropout.unwrap_or(init.dropout))
    .with_init_std(method.init().random_std(init.init_std));
    let start = real_tokens(encoder, init).map(|(tokens, frozen)| {
        let selected = layers.layers(config.num_layers);
        onto(tokens.flat_prefix(&frozen, &selected), device)
    });
    Some(match start {
        Some(start) => config.init_with(start),
        None => config.init(device),
    })
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
        let mut encoder = if method.kind().freezes_backbone() {
            encoder.no_grad().with_precision(init.precision)
        } else {
            encoder
        };
        if encoder.pooler_trains {
            // A context pooler is part of the head: it trains under every method.
            encoder.pooler = encoder.pooler.map(|p| p.set_require_grad(true));
        }
        let adapter = new_adapter(&encoder, method, init, device);
        let encoder = if let Method::Lora {
            rank,
            alpha,
            targets,
        } = method
        {
            lora::attach(encoder, *rank, *alpha, targets)
        } else {
            encoder
        };
        let head = TaskHead::Classifier(
            HeadConfig::new(head.clone(), hidden)
                .with_dropout(init.dropout)
                .with_init_std(init.init_std)
                .init(device),
        );
        Self {
            encoder,
            adapter,
            head,
            kind: method.kind(),
        }
    }

    /// The task's classes read by the checkpoint's masked-LM head at a template's `[MASK]`
    /// instead of a new classifier: it trains where the backbone does (FT) and stays as loaded
    /// where the method freezes the backbone (`head_trains`).
    pub fn with_verbalizer(self, head: VerbalizerHead) -> Self {
        let mut model = Self {
            head: TaskHead::Verbalizer(head),
            ..self
        };
        let trains = model.head_trains();
        model.head = model.head.set_require_grad(trains);
        model
    }

    /// Does the head train? A new classifier always does; a verbalizer where the backbone does.
    fn head_trains(&self) -> bool {
        self.head.classifier().is_some() || !self.kind.freezes_backbone()
    }

    pub fn prompts(&self, batch: usize) -> Prompts {
        match &self.adapter {
            Some(Adapter::Prompt(prompt)) => prompt.prompts(),
            Some(Adapter::PromptEncoder(encoder)) => encoder.prompts(),
            Some(Adapter::Prefix(prefix)) if !prefix_detached() => prefix.prompts(batch),
            _ => Prompts::none(),
        }
    }

    /// The PT2 prefix, if the method has one.
    pub fn prefix(&self) -> Option<&PrefixEncoder> {
        match &self.adapter {
            Some(Adapter::Prefix(prefix)) => Some(prefix),
            _ => None,
        }
    }

    /// The PT prompts, if the method has them.
    pub fn prompt(&self) -> Option<&PromptTuning> {
        match &self.adapter {
            Some(Adapter::Prompt(prompt)) => Some(prompt),
            _ => None,
        }
    }

    pub fn forward(&self, input: &EncoderInput) -> Logits {
        let batch = input.input_ids.dims()[0];
        let encoded = self.encoder.forward(input, &self.prompts(batch));
        self.head.forward(encoded, &input.input_ids, &self.encoder)
    }

    pub fn param_counts(&self) -> ParamCounts {
        let mut counter = CountParams(ParamCounts {
            trainable: 0,
            total: 0,
        });
        self.visit(&mut counter);
        counter.0
    }

    /// Regexes of the module paths (enum variants skipped) this model trains, `None` for all of
    /// them: the method's `trains`, plus a context pooler, which trains with the head. The one
    /// list that the checkpoint, the resume state and `untracked_trainables` read.
    pub fn trained_patterns(&self) -> Option<Vec<&'static str>> {
        match self.kind.facts().trains {
            Trains::Everything => None,
            Trains::Matching(patterns) => {
                let head_trains = self.head_trains();
                let mut all: Vec<&'static str> = patterns
                    .iter()
                    .copied()
                    .filter(|p| head_trains || *p != HEAD_PATHS)
                    .collect();
                if self.encoder.pooler_trains {
                    all.push(POOLER_PATHS);
                }
                Some(all)
            }
        }
    }

    /// Does the model train the tensor at a module path (by `trained_patterns`)? The regexes
    /// are compiled once, for testing many paths.
    pub fn trained_matcher(&self) -> impl Fn(&str) -> bool {
        let regexes: Option<Vec<regex::Regex>> = self.trained_patterns().map(|patterns| {
            patterns
                .iter()
                .map(|p| regex::Regex::new(p).expect("a method's trains patterns are valid"))
                .collect()
        });
        move |path| {
            regexes
                .as_ref()
                .is_none_or(|r| r.iter().any(|p| p.is_match(path)))
        }
    }

    /// The trainable tensors (`require_grad`) that `trained_patterns` leaves out: empty unless a
    /// method's `trains` is wrong, which would drop them from checkpoints and resume states.
    pub fn untracked_trainables(&self) -> Vec<String> {
        let mut paths = TrainablePaths::default();
        self.visit(&mut paths);
        let trains = self.trained_matcher();
        paths
            .found
            .into_iter()
            .filter(|path| !trains(path))
            .collect()
    }

    /// Save what the method trained (`trained_patterns`; a PT2 prefix collapsed, a P-tuning
    /// encoder as its prompts) and the frozen
    /// tensors that were drawn at random rather than loaded (a random pooler).
    pub fn save_checkpoint(self, path: &Path) -> Result<Self, ModelError> {
        let adapter = match self.adapter {
            Some(Adapter::Prefix(prefix)) => Some(Adapter::Prefix(prefix.collapse())),
            Some(Adapter::PromptEncoder(encoder)) => Some(Adapter::Prompt(encoder.collapse())),
            other => other,
        };
        Self { adapter, ..self }.save_uncollapsed(path)
    }

    /// Save what the method trains as it stands: a P-tuning encoder whole, as the replay's
    /// start needs it (`save_checkpoint` writes what a run keeps).
    pub fn save_uncollapsed(self, path: &Path) -> Result<Self, ModelError> {
        let model = self;
        // One metadata entry: burn's default several come out in hash order, and a checkpoint
        // of the same weights must be the same bytes.
        let mut store = SafetensorsStore::from_file(path)
            .skip_enum_variants(true)
            .clear_metadata()
            .metadata("producer", "ptv2");
        if let Some(mut patterns) = model.trained_patterns() {
            // burn saves every tensor under an empty filter: nothing trained matches nothing.
            if patterns.is_empty() {
                patterns.push("^$");
            }
            store = store.with_regexes(patterns);
            if model.encoder.random_pooler {
                store = store.with_regex(POOLER_PATHS);
            }
        }
        for (module_path, file_name) in CHECKPOINT_NAMES {
            store = store.with_key_remapping(exactly(module_path), *file_name);
        }
        for (module_path, file_name) in lora::checkpoint_names().0 {
            store = store.with_key_remapping(module_path, file_name);
        }
        model
            .save_into(&mut store)
            .map_err(|e| ModelError::BadWeights {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(model)
    }

    /// The model for inference: LoRA's factors merged into the weights they adapt (one matmul per
    /// projection again); other methods unchanged.
    pub fn merged(self) -> Self {
        if lora::has_adapters(&self.encoder) {
            Self {
                encoder: self.encoder.materialize(),
                ..self
            }
        } else {
            self
        }
    }

    /// Load a checkpoint written by `save_checkpoint` into a model built with `method.as_saved()`.
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<(), ModelError> {
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path: path.to_path_buf(),
            });
        }
        let mut store = SafetensorsStore::from_file(path)
            .allow_partial(true)
            .skip_enum_variants(true);
        for (module_path, file_name) in CHECKPOINT_NAMES {
            store = store.with_key_remapping(exactly(file_name), *module_path);
        }
        for (file_name, module_path) in lora::checkpoint_names().1 {
            store = store.with_key_remapping(file_name, module_path);
        }
        let result = crate::encoder::load::apply_store(self, &mut store, path)?;
        // A LoRA factor left out would silently stay at its init (B = 0: no update at all), a
        // random pooler at another draw.
        let needed = |name: &str| {
            name.contains(".lora.")
                || (self.encoder.random_pooler && name.starts_with("encoder.pooler."))
        };
        if let Some((missing, _)) = result.missing.iter().find(|(name, _)| needed(name)) {
            return Err(ModelError::DoesNotFit {
                path: path.to_path_buf(),
                message: format!("no tensor for {missing} (a LoRA factor for each of the run's lora_targets in each layer; the random pooler of missing_pooler = random)"),
            });
        }
        if let Some(unused) = result.unused.iter().find(|name| name.contains(".lora.")) {
            return Err(ModelError::DoesNotFit {
                path: path.to_path_buf(),
                message: format!("LoRA factor {unused} has no place in this model (another model's layers, or other lora_targets)"),
            });
        }
        if self.head_trains() && !result.applied.iter().any(|name| name.starts_with("head.")) {
            return Err(ModelError::BadWeights {
                path: path.to_path_buf(),
                message: "no head weights in the checkpoint".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EncoderConfig;
    use p_tuning_v2::PrefixParams;

    /// The prefix's dropout rate in a PT2 model built with `prefix_dropout` at a run dropout of 0.1.
    fn prefix_rate(prefix_dropout: Option<f64>) -> f64 {
        let device = Device::flex();
        let encoder = Encoder::init(&EncoderConfig::tiny_bert(), false, &device);
        let method = Method::from_options(&MethodOptions {
            prompt_len: 2,
            prefix_dropout,
            ..MethodOptions::neutral(MethodKind::Pt2)
        })
        .unwrap();
        let head = HeadKind::SequenceClassification { num_labels: 2 };
        let model = TunedModel::new(encoder, &method, &head, &MethodInit::default(), &device);
        assert_eq!(
            model.head.classifier().unwrap().dropout.prob,
            0.1,
            "the head keeps the run's dropout"
        );
        match model.adapter {
            Some(Adapter::Prefix(prefix)) => prefix.dropout.prob,
            _ => unreachable!("PT2 has a prefix"),
        }
    }

    #[test]
    fn prefix_tuning_is_pt2_through_li_and_liangs_mlp_under_its_own_name() {
        let options = MethodOptions {
            prompt_len: 3,
            ..MethodOptions::neutral(MethodKind::Prefix)
        };
        let method = Method::from_options(&options).unwrap();
        assert_eq!(method.options(), options, "options round trip");
        assert_eq!(method.kind(), MethodKind::Prefix);
        assert_eq!(
            method.as_saved(),
            Method::pt2(3),
            "saved as PT2's plain prefix"
        );
        let device = Device::flex();
        let encoder = Encoder::init(&EncoderConfig::tiny_bert(), false, &device);
        let head = HeadKind::SequenceClassification { num_labels: 2 };
        let model = TunedModel::new(encoder, &method, &head, &MethodInit::default(), &device);
        let Some(Adapter::Prefix(prefix)) = &model.adapter else {
            panic!("prefix-tuning has a prefix")
        };
        let PrefixParams::Reparameterized(mlp) = &prefix.params else {
            panic!("trained through the MLP")
        };
        assert_eq!(mlp.dense_in.weight.dims()[1], prefix_tuning::MLP_HIDDEN);
        assert_eq!(model.kind, MethodKind::Prefix);
    }

    #[test]
    fn prefix_dropout_sets_the_prefix_alone() {
        assert_eq!(prefix_rate(None), 0.1, "THUDM's: the run's dropout");
        assert_eq!(prefix_rate(Some(0.0)), 0.0, "PEFT's: none");
        assert_eq!(prefix_rate(Some(0.3)), 0.3);
    }
}
