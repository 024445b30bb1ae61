//! The frozen backbone's precision: its projections' weights stored in half precision and its
//! matrix products computed there, everything a method trains in f32.
//!
//! The usual mixed-precision split, as autocast makes it: the products of the frozen Linear layers
//! (q, k, v, the attention output, the feed-forward pair; 96% of a BERT layer's weights and of its
//! arithmetic) read half-precision weights and inputs; LayerNorm, softmax, GELU, the residual sums,
//! the embeddings, the pooler, the trainable prefix/prompts/LoRA factors/head, the optimizer state
//! and the loss stay f32. A LoRA projection adds its low-rank path in f32 beside the half product
//! (merging a small update into a bf16 weight would round most of it away). Fine-tuning trains every
//! weight, so it has no frozen weights to halve: its runs stay f32 (the settings refuse the pair).

use std::fmt;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{DType, Device, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// `--precision`: the dtype of the frozen backbone's weights and products.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16: f32's range, 8 bits of mantissa.
    Bf16,
    /// IEEE half: 11 bits of mantissa, values up to 65504.
    F16,
}

impl Precision {
    /// The half dtype, or None for f32.
    pub fn half(self) -> Option<FloatDType> {
        match self {
            Self::F32 => None,
            Self::Bf16 => Some(FloatDType::BF16),
            Self::F16 => Some(FloatDType::F16),
        }
    }

    /// What `method`'s backbone runs in: this precision where the method freezes it, f32 where
    /// it trains (FT: its weights are their own master copy).
    pub fn of_backbone(self, method: crate::MethodKind) -> Self {
        if method.freezes_backbone() {
            self
        } else {
            Self::F32
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }

    /// An error naming the device (`--device NAME`) when it cannot hold this precision's tensors
    /// (lavapipe's Vulkan has f16 but no bf16).
    pub fn check_device(self, device: &Device, name: &str) -> Result<(), String> {
        match self.half() {
            Some(dtype) if !device.supports_dtype(dtype) => Err(format!(
                "precision {self}: the {name} device has no {self} tensors (use another precision)"
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `linear` with its weight and bias cast to `dtype` (a frozen projection).
pub(crate) fn cast_linear(linear: Linear, dtype: FloatDType) -> Linear {
    fn cast<const D: usize>(param: Param<Tensor<D>>, dtype: FloatDType) -> Param<Tensor<D>> {
        param.map(|t| t.cast(dtype))
    }
    Linear {
        weight: cast(linear.weight, dtype),
        bias: linear.bias.map(|b| cast(b, dtype)),
    }
}

/// The half dtype `linear`'s stored weight is in, if any.
pub(crate) fn half_weight(linear: &Linear) -> Option<DType> {
    let dtype = linear.weight.base().dtype();
    matches!(dtype, DType::BF16 | DType::F16).then_some(dtype)
}
