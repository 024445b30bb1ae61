//! ptv2-models: BERT/RoBERTa/DeBERTa-v2 encoders in burn, loaded from Hugging Face model dirs, with one seam
//! ([`bert::Prompts`]) through which the tuning methods add input prompts or per-layer K/V prefixes.

/// A setting type written as text (`parse` and `Display`): `FromStr` for command-line flags, and
/// serde as that text (`#[serde(into = "String", try_from = "String")]` on the type).
#[macro_export]
macro_rules! text_form {
    ($type:ty) => {
        impl std::str::FromStr for $type {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                Self::parse(text)
            }
        }

        impl From<$type> for String {
            fn from(value: $type) -> Self {
                value.to_string()
            }
        }

        impl TryFrom<String> for $type {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                Self::parse(&text)
            }
        }
    };
}

pub mod backend;
pub mod config;
pub mod dropout;
pub mod encoder;
pub mod error;
pub mod fixtures;
pub mod hub;
pub mod kernels;
pub mod methods;
pub mod precision;
pub mod tokenize;

pub use config::{EncoderConfig, ModelFamily};
pub use encoder::load::{load_encoder, ModelDir};
pub use encoder::{Encoder, EncoderInput, EncoderOutput, KvPrefix, Prompts};
pub use error::ModelError;
pub use hub::{resolve_model, ModelSpec, DEFAULT_MODEL};
pub use methods::heads::{Head, HeadConfig, HeadKind, Logits, TaskHead};
pub use methods::loss::Targets;
pub use methods::{
    Adapter, Method, MethodInit, MethodKind, MethodOptions, ParamCounts, PromptInit, PromptPool,
    TunedModel,
};
pub use precision::Precision;
pub use tokenize::{Piece, TextEncoder, TokenBatch};

/// A pretrained model ready to use: config, encoder (possibly layer-truncated) and tokenizer.
pub struct Pretrained {
    pub config: EncoderConfig,
    pub encoder: Encoder,
    pub text: TextEncoder,
}

/// Encoders loaded once and handed out as clones, which share the weights' memory: many runs of
/// one frozen backbone served side by side (`ptv2 serve`).
#[derive(Default)]
pub struct EncoderCache(std::collections::HashMap<ModelSpec, (EncoderConfig, Encoder)>);

impl Pretrained {
    /// Load a resolved model spec; `max_len` caps tokenized inputs.
    pub fn load(
        spec: &ModelSpec,
        max_len: usize,
        device: &burn::tensor::Device,
    ) -> Result<Self, ModelError> {
        Self::load_cached(spec, max_len, device, &mut EncoderCache::default())
    }

    /// `load`, with the encoder from `cache` when it holds this spec's (else loaded and kept).
    pub fn load_cached(
        spec: &ModelSpec,
        max_len: usize,
        device: &burn::tensor::Device,
        cache: &mut EncoderCache,
    ) -> Result<Self, ModelError> {
        let dir = ModelDir::new(&spec.dir);
        let (config, encoder) = match cache.0.get(spec) {
            Some(loaded) => loaded.clone(),
            None => {
                let loaded = Self::encoder_of(spec, &dir, device)?;
                cache.0.insert(spec.clone(), loaded.clone());
                loaded
            }
        };
        let text = TextEncoder::from_file(&dir.tokenizer_path()?, max_len)?;
        Ok(Self {
            config,
            encoder,
            text,
        })
    }

    /// The spec's encoder, cut to its layers.
    fn encoder_of(
        spec: &ModelSpec,
        dir: &ModelDir,
        device: &burn::tensor::Device,
    ) -> Result<(EncoderConfig, Encoder), ModelError> {
        let (mut config, mut encoder) = if spec.random_weights {
            let config = dir.config()?;
            let encoder = Encoder::init(&config, true, device);
            (config, encoder)
        } else {
            load_encoder(dir, device)?
        };
        if let Some(layers) = spec.layers {
            if layers > config.num_hidden_layers {
                return Err(ModelError::Invalid(format!(
                    "{}: asked for {layers} layers, the model has {}",
                    spec.dir.display(),
                    config.num_hidden_layers
                )));
            }
            encoder = encoder.truncate_layers(layers);
            config.num_hidden_layers = layers;
        }
        Ok((config, encoder))
    }
}
