//! BERT, RoBERTa and DeBERTa-v2/v3 encoders with Hugging Face semantics: post-LayerNorm blocks,
//! exact (erf) GELU, additive attention mask, BERT vs RoBERTa position ids, token type ids, the
//! optional pooler. DeBERTa's relative attention and convolution are in `deberta.rs`; here they
//! are optional parts (absent for BERT and RoBERTa), so every method and head serves all three.
//!
//! Field names mirror the checkpoint keys (`embeddings.word_embeddings`,
//! `encoder.layer.{i}.attention.self_attn.query`, …) so loading is one mechanical walk; `load.rs`
//! holds the few renames (`LayerNorm` → `layer_norm`, `self` → `self_attn`).
//!
//! The one seam for the tuning methods is [`Prompts`]: optional input prompt vectors placed before
//! the real tokens' word embeddings, and optional per-layer key/value prefixes placed before the
//! real tokens' keys/values (reference notes §1.2–1.3, §8).

pub mod attention;
pub mod deberta;
pub mod load;
pub mod seam;

use burn::module::{Initializer, Module};
use burn::nn::conv::Conv1dConfig;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig, PaddingConfig1d,
};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Int, Tensor};

pub use self::seam::{EncoderInput, EncoderOutput, KvPrefix, Prompts};
use crate::config::{EncoderConfig, ModelFamily};

use self::attention::{AddNorm, Attending, Attention, Intermediate, Layer, SelfAttention};
use self::deberta::{row_mask, ConvLayer, RelativeAttention, RelativeBias};
use crate::precision::{cast_linear, Precision};
use crate::{dropout, kernels};

/// HF 4.11 (the paper's version) masks with -10000, not -inf; after softmax both give exact zeros.
const MASK_VALUE: f32 = -10000.0;

#[derive(Module, Debug)]
pub struct Embeddings {
    pub word_embeddings: Embedding,
    /// Absent in DeBERTa with `position_biased_input` false (v3, v2-xlarge).
    pub position_embeddings: Option<Embedding>,
    /// Absent where `type_vocab_size` is 0 (DeBERTa-v3).
    pub token_type_embeddings: Option<Embedding>,
    pub layer_norm: LayerNorm,
    /// burn's LayerNorm keeps its epsilon private; `kernels::layer_norm` needs it.
    pub layer_norm_eps: f64,
    pub dropout: Dropout,
    /// DeBERTa zeroes the padded positions' embeddings after the LayerNorm.
    pub mask_padding: bool,
    /// The longest sequence: the position table's rows, or the config's `max_position_embeddings`.
    pub max_positions: usize,
}

#[derive(Module, Debug)]
pub struct LayerStack {
    pub layer: Vec<Layer>,
    /// DeBERTa's relative-distance table (`encoder.rel_embeddings`).
    pub relative: Option<RelativeAttention>,
    /// DeBERTa-v2's convolution after the first layer (`encoder.conv`).
    pub conv: Option<ConvLayer>,
}

#[derive(Module, Debug)]
pub struct Pooler {
    pub dense: Linear,
    /// GELU (DeBERTa's ContextPooler, `with_context_pooler`); BERT's pooler is tanh.
    pub gelu: bool,
}

#[derive(Module, Debug)]
pub struct Encoder {
    pub embeddings: Embeddings,
    pub encoder: LayerStack,
    pub pooler: Option<Pooler>,
    /// The pooler is not the checkpoint's but drawn at random (`with_random_pooler`): a
    /// checkpoint of a frozen backbone must then carry it.
    pub random_pooler: bool,
    /// The pooler trains with the head even where the backbone is frozen (`with_context_pooler`).
    pub pooler_trains: bool,
    /// RoBERTa position ids count from `padding_idx + 1`; BERT's have no padding index (-1).
    pub roberta_padding_idx: i64,
}

fn linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    // HF `_init_weights`: biases start at zero.
    linear.bias = Some(Initializer::Zeros.init([d_out], device));
    linear
}

/// One transformer layer, HF-initialised.
fn new_layer(config: &EncoderConfig, device: &Device) -> Layer {
    let (h, std) = (config.hidden_size, config.initializer_range);
    let add_norm = |d_in: usize| AddNorm {
        dense: linear(d_in, h, std, device),
        layer_norm: LayerNormConfig::new(h)
            .with_epsilon(config.layer_norm_eps)
            .init(device),
        layer_norm_eps: config.layer_norm_eps,
        dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
    };
    // DeBERTa divides by √(d · (1 + c2p + p2c)) (transformers' `scale_factor`).
    let scale_factor = match config.family() {
        ModelFamily::DebertaV2 => 1 + config.deberta.pos_att_type.len(),
        ModelFamily::Bert | ModelFamily::Roberta => 1,
    };
    Layer {
        attention: Attention {
            self_attn: SelfAttention {
                query: linear(h, h, std, device),
                key: linear(h, h, std, device),
                value: linear(h, h, std, device),
                dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
                num_heads: config.num_attention_heads,
                scale_factor,
            },
            output: add_norm(h),
        },
        intermediate: Intermediate {
            dense: linear(h, config.intermediate_size, std, device),
        },
        output: add_norm(config.intermediate_size),
    }
}

/// DeBERTa's relative-distance table, HF-initialised (N(0, initializer_range), unit LayerNorm).
fn relative_attention(config: &EncoderConfig, device: &Device) -> RelativeAttention {
    let keys = &config.deberta;
    let std = config.initializer_range;
    RelativeAttention {
        rel_embeddings: EmbeddingConfig::new(2 * config.relative_span(), config.hidden_size)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device),
        layer_norm: config.relative_layer_norm().then(|| {
            LayerNormConfig::new(config.hidden_size)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        }),
        layer_norm_eps: config.layer_norm_eps,
        dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        buckets: keys.position_buckets.max(0) as usize,
        max_relative_positions: config.max_relative_positions(),
        c2p: keys.pos_att_type.iter().any(|t| t == "c2p"),
        p2c: keys.pos_att_type.iter().any(|t| t == "p2c"),
    }
}

/// deberta-v2's convolution: `conv_kernel_size` wide, padded to keep the length.
fn conv_layer(config: &EncoderConfig, device: &Device) -> ConvLayer {
    let h = config.hidden_size;
    let k = config.deberta.conv_kernel_size;
    let pad = (k - 1) / 2;
    ConvLayer {
        conv: Conv1dConfig::new(h, h, k)
            .with_groups(config.deberta.conv_groups.unwrap_or(1))
            .with_padding(PaddingConfig1d::Explicit(pad, pad))
            .init(device),
        layer_norm: LayerNormConfig::new(h)
            .with_epsilon(config.layer_norm_eps)
            .init(device),
        layer_norm_eps: config.layer_norm_eps,
        dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        gelu: config.deberta.conv_act == "gelu",
    }
}

impl Encoder {
    /// A randomly initialised encoder (HF init: N(0, initializer_range), zero biases, unit LayerNorm).
    /// Load pretrained weights with `load::load_encoder`.
    pub fn init(config: &EncoderConfig, with_pooler: bool, device: &Device) -> Self {
        let h = config.hidden_size;
        let std = config.initializer_range;
        let normal = Initializer::Normal { mean: 0.0, std };
        let embedding = |n: usize| {
            EmbeddingConfig::new(n, h)
                .with_initializer(normal.clone())
                .init(device)
        };
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        let hidden_dropout = || DropoutConfig::new(config.hidden_dropout_prob).init();
        let deberta = config.family() == ModelFamily::DebertaV2;
        let layers = (0..config.num_hidden_layers)
            .map(|_| new_layer(config, device))
            .collect();
        let absolute = !deberta || config.deberta.position_biased_input;
        Self {
            embeddings: Embeddings {
                word_embeddings: embedding(config.vocab_size),
                position_embeddings: absolute.then(|| embedding(config.max_position_embeddings)),
                token_type_embeddings: (config.type_vocab_size > 0)
                    .then(|| embedding(config.type_vocab_size)),
                layer_norm: norm(),
                layer_norm_eps: config.layer_norm_eps,
                dropout: hidden_dropout(),
                mask_padding: deberta,
                max_positions: config.max_position_embeddings,
            },
            encoder: LayerStack {
                layer: layers,
                relative: (deberta && config.deberta.relative_attention)
                    .then(|| relative_attention(config, device)),
                conv: (deberta && config.deberta.conv_kernel_size > 0)
                    .then(|| conv_layer(config, device)),
            },
            pooler: with_pooler.then(|| Pooler {
                dense: linear(h, h, std, device),
                gelu: false,
            }),
            random_pooler: false,
            pooler_trains: false,
            roberta_padding_idx: match config.family() {
                ModelFamily::Bert | ModelFamily::DebertaV2 => -1,
                ModelFamily::Roberta => config.padding_idx(),
            },
        }
    }

    /// The family it was built as: DeBERTa masks its padded embeddings, RoBERTa has a padding index.
    pub fn family(&self) -> ModelFamily {
        if self.embeddings.mask_padding {
            ModelFamily::DebertaV2
        } else if self.roberta_padding_idx >= 0 {
            ModelFamily::Roberta
        } else {
            ModelFamily::Bert
        }
    }

    pub fn num_layers(&self) -> usize {
        self.encoder.layer.len()
    }

    pub fn hidden_size(&self) -> usize {
        self.embeddings.word_embeddings.weight.dims()[1]
    }

    pub fn num_heads(&self) -> usize {
        self.encoder.layer[0].attention.self_attn.num_heads
    }

    pub fn max_positions(&self) -> usize {
        self.embeddings.max_positions
    }

    /// How many prompt + real tokens fit the position table (RoBERTa's ids start after its
    /// padding index); a run needs `prompt_len + max_len` of them.
    pub fn token_budget(&self) -> usize {
        let first = if self.roberta_padding_idx >= 0 {
            self.roberta_padding_idx as usize + 1
        } else {
            0
        };
        self.max_positions().saturating_sub(first)
    }

    /// Where the checkpoint has no pooler (roberta-large), one drawn as HF's `_init_weights` does
    /// (N(0, `std`), zero bias) from the device's seeded generator: what THUDM's code gets from
    /// `RobertaModel(add_pooling_layer=True)`. A checkpoint's own pooler is kept.
    pub fn with_random_pooler(mut self, std: f64) -> Self {
        if self.pooler.is_none() {
            let device = self.embeddings.word_embeddings.weight.val().device();
            let h = self.hidden_size();
            self.pooler = Some(Pooler {
                dense: linear(h, h, std, &device),
                gelu: false,
            });
            self.random_pooler = true;
        }
        self
    }

    /// Where the checkpoint has no pooler (DeBERTa), THUDM's DeBERTa classes' `ContextPooler`:
    /// dense + GELU on the [CLS] state, drawn N(0, `std`), trained with the head under every
    /// method. A checkpoint's own pooler is kept as it is.
    pub fn with_context_pooler(self, std: f64) -> Self {
        if self.pooler.is_some() {
            return self;
        }
        let mut encoder = self.with_random_pooler(std);
        if let Some(pooler) = &mut encoder.pooler {
            pooler.gelu = true;
        }
        encoder.pooler_trains = true;
        encoder
    }

    /// The same encoder with hidden dropout `rate` (embeddings, attention output, FFN output), as
    /// HF's `hidden_dropout_prob`; attention-probability dropout keeps its rate.
    pub fn with_hidden_dropout(mut self, rate: f64) -> Self {
        self.embeddings.dropout.prob = rate;
        if let Some(relative) = &mut self.encoder.relative {
            relative.dropout.prob = rate;
        }
        if let Some(conv) = &mut self.encoder.conv {
            conv.dropout.prob = rate;
        }
        for layer in &mut self.encoder.layer {
            layer.attention.output.dropout.prob = rate;
            layer.output.dropout.prob = rate;
        }
        self
    }

    /// Every layer's projections (q, k, v, attention output, feed-forward) stored in `precision`'s
    /// half dtype: a frozen backbone's (`Precision`). The embeddings and the pooler stay f32.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        let Some(half) = precision.half() else {
            return self;
        };
        let cast = |linear: Linear| cast_linear(linear, half);
        for layer in &mut self.encoder.layer {
            let attention = &mut layer.attention;
            attention.self_attn.query = cast(attention.self_attn.query.clone());
            attention.self_attn.key = cast(attention.self_attn.key.clone());
            attention.self_attn.value = cast(attention.self_attn.value.clone());
            attention.output.dense = cast(attention.output.dense.clone());
            layer.intermediate.dense = cast(layer.intermediate.dense.clone());
            layer.output.dense = cast(layer.output.dense.clone());
        }
        self
    }

    /// Keep only the first `n` layers (the pretrained bottom of the stack).
    pub fn truncate_layers(mut self, n: usize) -> Self {
        self.encoder.layer.truncate(n);
        self
    }

    pub fn forward(&self, input: &EncoderInput, prompts: &Prompts) -> EncoderOutput {
        let [_, seq] = input.input_ids.dims();
        assert!(
            prompts.layers.is_empty() || prompts.layers.len() == self.num_layers(),
            "prompts.layers has {} entries, the encoder {} layers",
            prompts.layers.len(),
            self.num_layers()
        );

        let (embedded, token_mask) = self.embed(input, prompts);
        let relative = self.relative_bias(&embedded);

        let additive = additive_mask(token_mask.clone());
        let mut hidden = embedded.clone();
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let prefix = prompts.layers.get(i).and_then(Option::as_ref);
            let mask = layer_mask(&additive, prefix);
            let with = Attending {
                mask: &mask,
                prefix,
                relative: relative.as_ref(),
            };
            hidden = layer.forward(hidden, &with);
            hidden = self.after_layer(i, &embedded, hidden, &token_mask);
        }
        self.pool(hidden, seq, prompts.pool_first_prompt)
    }

    /// The real tokens' states (input prompts cut off) and the pooled output: the pooler reads
    /// the real [CLS], or the first prompt where the method asks for it; without a pooler the
    /// head reads the [CLS] state itself, or the first prompt's.
    fn pool(&self, hidden: Tensor<3>, seq: usize, pool_first_prompt: bool) -> EncoderOutput {
        let [batch, total, _] = hidden.dims();
        let n_input_prompts = total - seq;
        let first_prompt = (pool_first_prompt && n_input_prompts > 0).then(|| {
            hidden
                .clone()
                .narrow(1, 0, 1)
                .reshape([batch, self.hidden_size()])
        });
        let last_hidden_state = if n_input_prompts > 0 {
            hidden.narrow(1, n_input_prompts, seq)
        } else {
            hidden
        };
        let pooled = match (&self.pooler, first_prompt) {
            (Some(pooler), first) => {
                let read = first.unwrap_or_else(|| {
                    last_hidden_state
                        .clone()
                        .narrow(1, 0, 1)
                        .reshape([batch, self.hidden_size()])
                });
                let dense = pooler.dense.forward(read);
                Some(if pooler.gelu {
                    kernels::gelu(dense)
                } else {
                    tanh(dense)
                })
            }
            (None, first) => first,
        };
        EncoderOutput {
            last_hidden_state,
            pooled,
        }
    }

    /// Each layer's key and value projections of `input`'s tokens (no prompts, no prefix),
    /// `[batch, seq, hidden]` each, in the layout a flat prefix stores them (`[head][head_dim]`).
    /// Li & Liang initialise a prefix with these activations of real words.
    pub fn key_values(&self, input: &EncoderInput) -> Vec<(Tensor<3>, Tensor<3>)> {
        let (embedded, token_mask) = self.embed(input, &Prompts::none());
        let relative = self.relative_bias(&embedded);
        let mask = additive_mask(token_mask.clone());
        let mut key_values = Vec::with_capacity(self.num_layers());
        let mut hidden = embedded.clone();
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let attention = &layer.attention.self_attn;
            key_values.push((
                kernels::linear::dense(&attention.key, hidden.clone()),
                kernels::linear::dense(&attention.value, hidden.clone()),
            ));
            let with = Attending {
                mask: &mask,
                prefix: None,
                relative: relative.as_ref(),
            };
            hidden = layer.forward(hidden, &with);
            hidden = self.after_layer(i, &embedded, hidden, &token_mask);
        }
        key_values
    }

    /// DeBERTa's relative-position inputs for a `[batch, seq, hidden]` pass; `None` for BERT.
    fn relative_bias(&self, embedded: &Tensor<3>) -> Option<RelativeBias<'_>> {
        let [batch, seq, _] = embedded.dims();
        let relative = self.encoder.relative.as_ref()?;
        Some(relative.prepare(batch, self.num_heads(), seq))
    }

    /// What runs after layer `i` besides the layers: DeBERTa-v2's convolution after the first.
    fn after_layer(
        &self,
        i: usize,
        embedded: &Tensor<3>,
        hidden: Tensor<3>,
        token_mask: &Tensor<2, Int>,
    ) -> Tensor<3> {
        match (&self.encoder.conv, i) {
            (Some(conv), 0) => conv.forward(embedded.clone(), hidden, &row_mask(token_mask)),
            _ => hidden,
        }
    }

    /// Word + position + token type embeddings → LayerNorm → dropout, with input prompts in front.
    /// Returns the hidden states and the token mask, both over prompts + tokens.
    fn embed(&self, input: &EncoderInput, prompts: &Prompts) -> (Tensor<3>, Tensor<2, Int>) {
        let [batch, _seq] = input.input_ids.dims();
        let device = input.input_ids.device();
        let emb = &self.embeddings;

        let mut words = emb.word_embeddings.forward(input.input_ids.clone());
        let mut mask = input.attention_mask.clone();
        let mut types = input.token_type_ids.clone();
        // Which positions count for RoBERTa's position rule: HF uses `input_ids != padding_idx`.
        let mut not_pad = input
            .input_ids
            .clone()
            .not_equal_elem(self.roberta_padding_idx)
            .int();
        if let Some(prompt) = &prompts.input {
            let [pb, p, h] = prompt.dims();
            let prompt = if pb == batch {
                prompt.clone()
            } else {
                prompt.clone().expand([batch, p, h])
            };
            let real = prompts
                .input_mask
                .clone()
                .unwrap_or_else(|| Tensor::<2, Int>::ones([batch, p], &device));
            words = Tensor::cat(vec![prompt, words], 1);
            mask = Tensor::cat(vec![real.clone(), mask], 1);
            not_pad = Tensor::cat(vec![real, not_pad], 1);
            types = Tensor::cat(vec![Tensor::zeros([batch, p], &device), types], 1);
        }
        let mut x = words;
        if let Some(positions) = self.position_embeddings(prompts, not_pad) {
            x = x + positions;
        }
        if let Some(table) = &emb.token_type_embeddings {
            x = x + table.forward(types);
        }
        let mut x = kernels::layer_norm(x, &emb.layer_norm, emb.layer_norm_eps);
        if emb.mask_padding {
            x = x * row_mask(&mask);
        }
        (dropout::apply(&emb.dropout, x), mask)
    }

    /// The position embeddings of prompts + tokens (`not_pad` over both), each row offset by the
    /// prefix before it; `None` where the model has no absolute positions (DeBERTa-v3).
    fn position_embeddings(&self, prompts: &Prompts, not_pad: Tensor<2, Int>) -> Option<Tensor<3>> {
        let [batch, total] = not_pad.dims();
        let device = not_pad.device();
        let offset = prompts.prefix_len() as i64;
        // The largest position id used must exist in the position table.
        let first_position = if self.roberta_padding_idx >= 0 {
            self.roberta_padding_idx + 1
        } else {
            0
        };
        let last_position = first_position + offset + total as i64 - 1;
        assert!(
            (last_position as usize) < self.max_positions(),
            "{offset} prefix + {total} tokens need position {last_position}, the model has {}",
            self.max_positions()
        );
        let table = self.embeddings.position_embeddings.as_ref()?;
        let plain_bert = self.roberta_padding_idx < 0
            && prompts.row_offsets.is_none()
            && prompts.input_mask.is_none();
        let positions = if plain_bert {
            Tensor::<1, Int>::arange(offset..offset + total as i64, &device)
                .unsqueeze::<2>()
                .expand([batch, total])
        } else {
            self.row_positions(prompts, not_pad, total)
        };
        Some(table.forward(positions))
    }
}

impl Encoder {
    /// Position ids counted per row: RoBERTa's rule, and any mixed-task batch (each row offset
    /// by its own prefix length, its padded prompt slots skipped, so a row gets the ids its own
    /// model alone would give it).
    fn row_positions(
        &self,
        prompts: &Prompts,
        not_pad: Tensor<2, Int>,
        total: usize,
    ) -> Tensor<2, Int> {
        let [batch, _] = not_pad.dims();
        let device = not_pad.device();
        let offsets = prompts.row_offsets.clone().unwrap_or_else(|| {
            Tensor::<2, Int>::ones([batch, 1], &device) * prompts.prefix_len() as i64
        });
        if self.roberta_padding_idx >= 0 {
            // create_position_ids_from_input_ids: (cumsum(m) + past) * m + padding_idx
            return (not_pad.clone().cumsum(1) + offsets) * not_pad + self.roberta_padding_idx;
        }
        // BERT counts every slot (padding tokens too) except the padded prompt slots before them.
        let tokens = total - prompts.input.as_ref().map_or(0, |p| p.dims()[1]);
        let counted = match &prompts.input_mask {
            Some(real) => Tensor::cat(
                vec![real.clone(), Tensor::ones([batch, tokens], &device)],
                1,
            ),
            None => Tensor::ones([batch, total], &device),
        };
        (counted.cumsum(1) - 1).clamp_min(0) + offsets
    }
}

/// The additive attention mask over keys, `[batch, 1, 1, keys]`, from a 1/0 token mask.
fn additive_mask(mask: Tensor<2, Int>) -> Tensor<4> {
    let additive = (mask.float().neg() + 1.0) * MASK_VALUE;
    additive.unsqueeze_dim::<3>(1).unsqueeze_dim(1)
}

/// One layer's additive mask, `[batch, 1, 1, P + keys]`: its prefix columns visible (or masked
/// where a row's prefix is padding, in a mixed-task batch), then the tokens'.
fn layer_mask(additive: &Tensor<4>, prefix: Option<&KvPrefix>) -> Tensor<4> {
    let prefix_mask = match prefix {
        Some(KvPrefix {
            mask: Some(mask), ..
        }) => additive_mask(mask.clone()),
        Some(prefix) if !prefix.is_empty() => {
            let [batch, ..] = additive.dims();
            Tensor::zeros([batch, 1, 1, prefix.len()], &additive.device())
        }
        _ => return additive.clone(),
    };
    Tensor::cat(vec![prefix_mask, additive.clone()], 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_dropout_sets_the_three_hidden_rates_and_keeps_attention_probabilities() {
        let config = EncoderConfig::tiny_bert();
        let encoder = Encoder::init(&config, false, &Device::flex()).with_hidden_dropout(0.2);
        assert_eq!(encoder.embeddings.dropout.prob, 0.2);
        for layer in &encoder.encoder.layer {
            assert_eq!(layer.attention.output.dropout.prob, 0.2);
            assert_eq!(layer.output.dropout.prob, 0.2);
            assert_eq!(
                layer.attention.self_attn.dropout.prob,
                config.attention_probs_dropout_prob
            );
        }
    }
}
