//! What DeBERTa-v2/v3 adds to the BERT encoder of `mod.rs` (transformers' `modeling_deberta_v2`):
//! disentangled attention — besides content-to-content scores, content-to-position (c2p) and
//! position-to-content (p2c) scores against a table of relative-distance embeddings, read through
//! the layer's own query/key projections (`share_att_key`), distances bucketed logarithmically past
//! `position_buckets / 2` — and the convolution after the first layer (deberta-v2-xlarge).
//!
//! A P-tuning v2 prefix attaches as THUDM's DeBERTa-v2 code does (`model/debertaV2.py`): its K/V
//! join the content scores and the values; the relative bias covers the real tokens only and is
//! zero on the prefix columns (the prefix has no position).

use burn::module::Module;
use burn::nn::conv::Conv1d;
use burn::nn::{Dropout, Embedding, LayerNorm};
use burn::tensor::activation::tanh;
use burn::tensor::{Int, Tensor, TensorData};

use crate::{dropout, kernels};

/// The relative-distance table shared by every layer (`encoder.rel_embeddings`, optionally
/// LayerNorm-ed as `encoder.LayerNorm`).
#[derive(Module, Debug)]
pub struct RelativeAttention {
    pub rel_embeddings: Embedding,
    pub layer_norm: Option<LayerNorm>,
    pub layer_norm_eps: f64,
    /// transformers' `pos_dropout` (hidden dropout rate), drawn afresh in every layer.
    pub dropout: Dropout,
    /// Log buckets (`position_buckets`); 0: distances are only clamped.
    pub buckets: usize,
    pub max_relative_positions: usize,
    pub c2p: bool,
    pub p2c: bool,
}

/// One forward pass's relative-position inputs, made once for every layer.
pub(crate) struct RelativeBias<'a> {
    module: &'a RelativeAttention,
    /// `[1, 2·span, hidden]`
    table: Tensor<3>,
    /// `[batch, heads, seq, seq]`: which table row each (query, key) pair reads.
    c2p_index: Tensor<4, Int>,
    /// The same for p2c, indexed (key, query) as transformers gathers it.
    p2c_index: Tensor<4, Int>,
}

/// transformers' `make_log_bucket_position`: exact within ±bucket/2, logarithmic beyond, in f32
/// as torch computes it.
pub fn log_bucket(relative: i64, bucket_size: usize, max_position: usize) -> i64 {
    let mid = (bucket_size / 2) as i64;
    let abs = if relative.abs() < mid {
        mid - 1
    } else {
        relative.abs()
    };
    if abs <= mid {
        return relative;
    }
    let ratio = (abs as f32 / mid as f32).ln() / ((max_position - 1) as f32 / mid as f32).ln();
    let log_pos = (ratio * (mid - 1) as f32).ceil() as i64 + mid;
    log_pos * relative.signum()
}

impl RelativeAttention {
    /// Table rows each side of distance 0: `position_buckets`, or `max_relative_positions`.
    pub fn span(&self) -> usize {
        if self.buckets > 0 {
            self.buckets
        } else {
            self.max_relative_positions
        }
    }

    /// transformers' `build_relative_position`: `q − k`, bucketed where buckets are set.
    fn relative_position(&self, query: usize, key: usize) -> i64 {
        let distance = query as i64 - key as i64;
        if self.buckets > 0 {
            log_bucket(distance, self.buckets, self.max_relative_positions)
        } else {
            distance
        }
    }

    pub(crate) fn prepare(&self, batch: usize, heads: usize, seq: usize) -> RelativeBias<'_> {
        let weight = self.rel_embeddings.weight.val();
        let device = weight.device();
        let span = self.span();
        let table = weight.narrow(0, 0, 2 * span).unsqueeze::<3>();
        let table = match &self.layer_norm {
            Some(norm) => kernels::layer_norm(table, norm, self.layer_norm_eps),
            None => table,
        };
        let clamp = |r: i64| (r + span as i64).clamp(0, 2 * span as i64 - 1);
        let index = |f: &dyn Fn(usize, usize) -> i64| {
            let values: Vec<i64> = (0..seq * seq).map(|i| f(i / seq, i % seq)).collect();
            Tensor::<2, Int>::from_data(TensorData::new(values, [seq, seq]), &device)
                .unsqueeze::<4>()
                .expand([batch, heads, seq, seq])
        };
        RelativeBias {
            module: self,
            table,
            c2p_index: index(&|q, k| clamp(self.relative_position(q, k))),
            p2c_index: index(&|k, q| clamp(-self.relative_position(k, q))),
        }
    }
}

impl RelativeBias<'_> {
    /// One layer's c2p + p2c scores over the real tokens, `[batch, heads, seq, seq]`. `query` is
    /// already divided by `scale` (√(head_dim · (1 + c2p + p2c))), `key` is not.
    pub(crate) fn scores(
        &self,
        projections: (&burn::nn::Linear, &burn::nn::Linear),
        query: &Tensor<4>,
        key: &Tensor<4>,
        scale: f64,
    ) -> Option<Tensor<4>> {
        let [batch, heads, _seq, head_dim] = query.dims();
        let table = dropout::apply(&self.module.dropout, self.table.clone());
        let project = |linear: &burn::nn::Linear| {
            // The attention's own query/key projections, split into heads.
            let projected = kernels::linear::dense(linear, table.clone());
            let [one, rows, width] = projected.dims();
            projected
                .reshape([one, rows, heads, width / heads])
                .swap_dims(1, 2)
                .expand([batch, heads, rows, head_dim])
        };
        let mut score: Option<Tensor<4>> = None;
        if self.module.c2p {
            let pos_key = project(projections.1);
            let c2p = query.clone().matmul(pos_key.swap_dims(2, 3));
            score = Some(c2p.gather(3, self.c2p_index.clone()));
        }
        if self.module.p2c {
            let pos_query = project(projections.0) / scale;
            let p2c = key.clone().matmul(pos_query.swap_dims(2, 3));
            let p2c = p2c.gather(3, self.p2c_index.clone()).swap_dims(2, 3);
            score = Some(match score {
                Some(c2p) => c2p + p2c,
                None => p2c,
            });
        }
        score
    }
}

/// deberta-v2's `ConvLayer`, applied once after the first layer: a 1-D convolution over the
/// embeddings added to the first layer's output.
#[derive(Module, Debug)]
pub struct ConvLayer {
    pub conv: Conv1d,
    pub layer_norm: LayerNorm,
    pub layer_norm_eps: f64,
    pub dropout: Dropout,
    /// `conv_act`: GELU, else tanh.
    pub gelu: bool,
}

impl ConvLayer {
    /// `embedded`: the embeddings' output; `residual`: the first layer's; `mask`: `[batch, seq, 1]`.
    pub(crate) fn forward(
        &self,
        embedded: Tensor<3>,
        residual: Tensor<3>,
        mask: &Tensor<3>,
    ) -> Tensor<3> {
        let out = self.conv.forward(embedded.swap_dims(1, 2)).swap_dims(1, 2) * mask.clone();
        let out = dropout::apply(&self.dropout, out);
        let out = if self.gelu {
            kernels::gelu(out)
        } else {
            tanh(out)
        };
        kernels::layer_norm(residual + out, &self.layer_norm, self.layer_norm_eps) * mask.clone()
    }
}

/// A float `[batch, seq, 1]` copy of a 1/0 token mask, for multiplying hidden states.
pub(crate) fn row_mask(mask: &Tensor<2, Int>) -> Tensor<3> {
    mask.clone().float().unsqueeze_dim(2)
}
