//! A method and its options as flat run settings: one group that the harness flattens into
//! `ptv2 train`'s flags, a sweep's keys and config.json (so the keys and their order are what
//! they were when these were separate fields, and run ids stay). Options a method does not have
//! sit at their neutral values (`Method::options`), so runs that differ only in those are one run.

use clap::Args;
use serde::{Deserialize, Serialize};

use super::lora::LoraTargets;
use super::p_tuning::PromptEncoderKind;
use super::p_tuning_v2::LayerSelection;
use super::prompt_tuning::PromptPool;
use super::registry::MethodKind;

/// PEFT's `LoraConfig` defaults: r = 8, lora_alpha = 8, target modules query and value.
pub const LORA_RANK: usize = 8;
pub const LORA_ALPHA: f64 = 8.0;

#[derive(Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodOptions {
    /// the tuning method (`ptv2 methods` lists them with what each trains)
    #[arg(long, value_enum)]
    pub method: MethodKind,
    /// prompt length P of pt, ptuning, pt2 and prefix (ft and lora have none: their combinations collapse into one run)
    #[arg(long, default_value_t = 16)]
    pub prompt_len: usize,
    /// pt2: train the prefix through an MLP of this hidden size (reparameterization); prefix: that MLP's size [default 512, Li & Liang's]; ptuning: the prompt encoder's hidden size [default: H/2 per LSTM direction, H for the MLP, as the P-tuning paper's code]
    #[arg(long)]
    pub reparam_hidden: Option<usize>,
    /// ptuning: the prompt encoder, `lstm` (the P-tuning paper's: a 2-layer bidirectional LSTM and an MLP) or `mlp` (PEFT's recommended 3-layer MLP)
    #[arg(long, default_value = "lstm")]
    #[serde(default, skip_serializing_if = "PromptEncoderKind::is_lstm")]
    pub ptuning_encoder: PromptEncoderKind,
    /// pt2: which layers get a prefix: `all`, `top:K`, `bottom:K`
    #[arg(long, default_value = "all")]
    pub prefix_layers: LayerSelection,
    /// pt: how the prompts start: `random` (N(0, the model's initializer_range)), `normal:STD`, `vocab` (word embeddings of frequent training tokens), `text:WORDS`
    #[arg(long, default_value = "random")]
    pub prompt_init: PromptInit,
    /// pt2: how the prefix starts: `random` (N(0, the model's initializer_range), as THUDM's code), `normal:STD` (`normal:1` is PEFT's), `vocab` (the frozen encoder's keys/values of frequent training tokens), `text:WORDS`
    #[arg(long, default_value = "random")]
    pub prefix_init: PromptInit,
    /// pt2, prefix: dropout on the prefix's keys and values, per example [default: the run's dropout, as THUDM's code; `0` as PEFT]
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_dropout: Option<f64>,
    /// pt, ptuning: where a sequence head reads: `cls` (the real [CLS], as the paper's code) or `first` (the first prompt, as PEFT's BertForSequenceClassification; `import-peft` sets it)
    #[arg(long, default_value = "cls")]
    #[serde(default, skip_serializing_if = "PromptPool::is_cls")]
    pub prompt_pool: PromptPool,
    /// lora: rank r of each update A·B
    #[arg(long, default_value_t = LORA_RANK)]
    #[serde(default = "lora_rank", skip_serializing_if = "is_lora_rank")]
    pub lora_rank: usize,
    /// lora: the update is scaled by lora_alpha / lora_rank (PEFT's default 8)
    #[arg(long, default_value_t = LORA_ALPHA)]
    #[serde(default = "lora_alpha", skip_serializing_if = "is_lora_alpha")]
    pub lora_alpha: f64,
    /// lora: which projections of each layer get an update, a subset of `q,k,v,o` (attention query, key, value, output)
    #[arg(long, default_value = "q,v")]
    #[serde(default, skip_serializing_if = "LoraTargets::is_default")]
    pub lora_targets: LoraTargets,
}

fn lora_rank() -> usize {
    LORA_RANK
}

fn is_lora_rank(rank: &usize) -> bool {
    *rank == LORA_RANK
}

fn lora_alpha() -> f64 {
    LORA_ALPHA
}

fn is_lora_alpha(alpha: &f64) -> bool {
    *alpha == LORA_ALPHA
}

impl MethodOptions {
    /// `method` with every option at its neutral value (what FT has: no prompt at all).
    pub fn neutral(method: MethodKind) -> Self {
        Self {
            method,
            prompt_len: 0,
            reparam_hidden: None,
            ptuning_encoder: PromptEncoderKind::Lstm,
            prefix_layers: LayerSelection::All,
            prompt_init: PromptInit::Random,
            prefix_init: PromptInit::Random,
            prefix_dropout: None,
            prompt_pool: PromptPool::Cls,
            lora_rank: LORA_RANK,
            lora_alpha: LORA_ALPHA,
            lora_targets: LoraTargets::default(),
        }
    }
}

/// How new prompts (PT) or prefixes (PT2) start. `Vocab` and `Text` start from real tokens: PT
/// from their word embeddings (PEFT's TEXT init), PT2 from the frozen encoder's own key/value
/// projections of them in every layer (Li & Liang's init with real-word activations). The harness
/// picks the tokens (`MethodInit::init_tokens`); random inits are N(0, initializer_range).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PromptInit {
    /// N(0, the model's initializer_range), as HF `_init_weights` does (0.02 for BERT).
    #[default]
    Random,
    /// N(0, std²): `normal:1` is PEFT's prefix init (a torch `nn.Embedding`).
    Normal(f64),
    /// P tokens sampled from the most frequent tokens of the training texts.
    Vocab,
    /// The tokens of this text, repeated or cut to P.
    Text(String),
}

impl PromptInit {
    pub fn is_random(&self) -> bool {
        *self == Self::Random
    }

    /// The std of a random start: `normal:STD`'s, or `default` (the model's initializer_range).
    pub fn random_std(&self, default: f64) -> f64 {
        match self {
            Self::Normal(std) => *std,
            _ => default,
        }
    }

    /// Parse `random`, `normal:STD`, `vocab` or `text:WORDS`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = || {
            format!("init \"{text}\": expected random, normal:STD (STD > 0), vocab or text:WORDS (non-empty)")
        };
        match text {
            "random" => Ok(Self::Random),
            "vocab" => Ok(Self::Vocab),
            _ => match (text.strip_prefix("text:"), text.strip_prefix("normal:")) {
                (Some(words), _) if !words.trim().is_empty() => Ok(Self::Text(words.to_string())),
                (_, Some(std)) => match std.parse::<f64>() {
                    Ok(std) if std > 0.0 && std.is_finite() => Ok(Self::Normal(std)),
                    _ => Err(expected()),
                },
                _ => Err(expected()),
            },
        }
    }
}

impl std::fmt::Display for PromptInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Random => write!(f, "random"),
            Self::Normal(std) => write!(f, "normal:{std}"),
            Self::Vocab => write!(f, "vocab"),
            Self::Text(words) => write!(f, "text:{words}"),
        }
    }
}

crate::text_form!(PromptInit);
