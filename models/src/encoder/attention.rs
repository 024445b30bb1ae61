//! One transformer layer with Hugging Face semantics: self-attention (with a method's key/value
//! prefix and DeBERTa's relative-position scores where present), `dense → dropout → + residual →
//! LayerNorm`, and the feed-forward block.

use burn::module::Module;
use burn::nn::{Dropout, LayerNorm, Linear};
use burn::tensor::Tensor;

use super::deberta::RelativeBias;
use super::seam::KvPrefix;
use crate::{dropout, kernels};

#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub dropout: Dropout,
    pub num_heads: usize,
    /// Scores are divided by √(head_dim · scale_factor): 1 for BERT, DeBERTa adds one per c2p/p2c.
    pub scale_factor: usize,
}

/// `dense → dropout → + residual → LayerNorm`: HF's `BertSelfOutput` and `BertOutput`.
#[derive(Module, Debug)]
pub struct AddNorm {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
    /// burn's LayerNorm keeps its epsilon private; `kernels::layer_norm` needs it.
    pub layer_norm_eps: f64,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct Attention {
    pub self_attn: SelfAttention,
    pub output: AddNorm,
}

#[derive(Module, Debug)]
pub struct Intermediate {
    pub dense: Linear,
}

#[derive(Module, Debug)]
pub struct Layer {
    pub attention: Attention,
    pub intermediate: Intermediate,
    pub output: AddNorm,
}

/// What a layer attends with besides its input: the additive mask over prefix and tokens, the
/// layer's key/value prefix, DeBERTa's relative-position inputs.
pub(crate) struct Attending<'a> {
    pub mask: &'a Tensor<4>,
    pub prefix: Option<&'a KvPrefix>,
    pub relative: Option<&'a RelativeBias<'a>>,
}

impl Layer {
    pub(crate) fn forward(&self, hidden: Tensor<3>, with: &Attending) -> Tensor<3> {
        let attended = self.attention.self_attn.forward(hidden.clone(), with);
        let hidden = self.attention.output.forward(attended, hidden);
        let inner = kernels::gelu(kernels::linear::dense(
            &self.intermediate.dense,
            hidden.clone(),
        ));
        self.output.forward(inner, hidden)
    }
}

impl AddNorm {
    fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let sum = dropout::apply(&self.dropout, kernels::linear::dense(&self.dense, x)) + residual;
        kernels::layer_norm(sum, &self.layer_norm, self.layer_norm_eps)
    }
}

impl SelfAttention {
    /// `[batch, seq, hidden]` → `[batch, heads, seq, head_dim]`
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, seq, hidden] = x.dims();
        x.reshape([batch, seq, self.num_heads, hidden / self.num_heads])
            .swap_dims(1, 2)
    }

    fn forward(&self, hidden: Tensor<3>, with: &Attending) -> Tensor<3> {
        let Attending {
            mask,
            prefix,
            relative,
        } = *with;
        let [batch, seq, width] = hidden.dims();
        let head_dim = width / self.num_heads;
        let scale = ((head_dim * self.scale_factor) as f64).sqrt();
        let query = self.split_heads(kernels::linear::dense(&self.query, hidden.clone()));
        let mut key = self.split_heads(kernels::linear::dense(&self.key, hidden.clone()));
        let mut value = self.split_heads(kernels::linear::dense(&self.value, hidden));
        // The fused attention scales inside its gemm; burn's ops scale the query rather than the
        // scores (seq × head_dim numbers instead of seq × seq).
        let fused = relative.is_none() && kernels::on_flex(&query);
        let query = if fused { query } else { query / scale };
        // DeBERTa's position scores, over the real tokens only (before the prefix joins).
        let bias = relative.and_then(|r| r.scores((&self.query, &self.key), &query, &key, scale));
        if let Some(prefix) = prefix {
            // Prefix K/V are already per-head projections: they go before the real tokens' K/V.
            let dims = [batch, self.num_heads, prefix.len(), head_dim];
            let expand = |t: &Tensor<4>| {
                if t.dims()[0] == batch {
                    t.clone()
                } else {
                    t.clone().expand(dims)
                }
            };
            key = Tensor::cat(vec![expand(&prefix.key), key], 2);
            value = Tensor::cat(vec![expand(&prefix.value), value], 2);
        }
        if fused {
            let dropout = dropout::seed_and_keep(&self.dropout, &query.device());
            let mask = mask.clone();
            return kernels::attention::attention(query, key, value, mask, 1.0 / scale, dropout);
        }
        let mut scores = query.matmul(key.swap_dims(2, 3));
        if let Some(bias) = bias {
            // THUDM's DeBERTa prefix: zero position bias on the prefix columns.
            let p = prefix.map_or(0, KvPrefix::len);
            scores = if p == 0 {
                scores + bias
            } else {
                let device = bias.device();
                let zeros = Tensor::zeros([batch, self.num_heads, seq, p], &device);
                scores + Tensor::cat(vec![zeros, bias], 3)
            };
        }
        let scores = scores + mask.clone();
        let probs = dropout::apply(&self.dropout, kernels::softmax_last(scores));
        probs
            .matmul(value)
            .swap_dims(1, 2)
            .reshape([batch, seq, width])
    }
}
