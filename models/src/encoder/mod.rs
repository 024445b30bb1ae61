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

pub mod deberta;
pub mod load;

use burn::module::{Initializer, Module};
use burn::nn::conv::Conv1dConfig;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig, PaddingConfig1d,
};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Int, Tensor};

use crate::config::{EncoderConfig, ModelFamily};
use crate::encoder::deberta::{row_mask, ConvLayer, RelativeAttention, RelativeBias};
use crate::{dropout, kernels};

/// HF 4.11 (the paper's version) masks with -10000, not -inf; after softmax both give exact zeros.
const MASK_VALUE: f32 = -10000.0;

/// Token-level inputs of one batch, all `[batch, seq]`.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    pub input_ids: Tensor<2, Int>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor<2, Int>,
    pub token_type_ids: Tensor<2, Int>,
}

/// Already-projected per-head key and value prefix of one layer, each `[batch or 1, heads, P, head_dim]`.
#[derive(Debug, Clone)]
pub struct KvPrefix {
    pub key: Tensor<4>,
    pub value: Tensor<4>,
    /// `[batch, P]`, 1 for a real prefix column, 0 for padding (rows of a mixed-task batch whose
    /// prefix is shorter, or absent at this layer). `None`: every column is real.
    pub mask: Option<Tensor<2, Int>>,
}

impl KvPrefix {
    /// Split a flat prefix `[batch, P, L·2·H]` in THUDM/PEFT layout `[layer][k|v][head][head_dim]`
    /// into one `KvPrefix` per layer (`view(B,P,2L,nh,hd).permute(2,0,3,1,4).split(2)`).
    pub fn split_flat(flat: Tensor<3>, num_layers: usize, num_heads: usize) -> Vec<KvPrefix> {
        let [batch, p, width] = flat.dims();
        let head_dim = width / (2 * num_layers * num_heads);
        assert_eq!(
            width,
            2 * num_layers * num_heads * head_dim,
            "flat prefix width {width} is not L·2·H for {num_layers} layers × {num_heads} heads"
        );
        // [B, P, 2L, nh, hd] → [2L, B, nh, P, hd]
        let slots = flat
            .reshape([batch, p, 2 * num_layers, num_heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let slot = |i: usize| {
            slots
                .clone()
                .narrow(0, i, 1)
                .reshape([batch, num_heads, p, head_dim])
        };
        (0..num_layers)
            .map(|l| KvPrefix {
                key: slot(2 * l),
                value: slot(2 * l + 1),
                mask: None,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.key.dims()[2]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a tuning method adds to the frozen encoder. `Prompts::none()` gives plain BERT/RoBERTa.
#[derive(Debug, Clone, Default)]
pub struct Prompts {
    /// `[batch or 1, P, hidden]`: vectors that stand in for word embeddings before the real tokens
    /// (prompt tuning). They get positions, token type 0, LayerNorm and dropout like any token.
    pub input: Option<Tensor<3>>,
    /// One entry per layer (or empty for none): the key/value prefix of that layer. A layer with
    /// `None` gets no extra columns at all — a zero prefix would not be a no-op.
    pub layers: Vec<Option<KvPrefix>>,
    /// `[batch, P]`, 1 for a real input prompt, 0 for padding; `None`: all real. Padding comes
    /// first, so each row's prompts sit right before its tokens (`mixed.rs`).
    pub input_mask: Option<Tensor<2, Int>>,
    /// `[batch, 1]`: each row's own prefix length, where rows differ (`mixed.rs`); `None`: every
    /// row is offset by the batch's prefix length.
    pub row_offsets: Option<Tensor<2, Int>>,
    /// The pooled output reads the first input prompt instead of the real `[CLS]` (PEFT's PT).
    pub pool_first_prompt: bool,
}

impl Prompts {
    pub fn none() -> Self {
        Self::default()
    }

    /// HF offsets the real tokens' position ids by the prefix length (`past_key_values_length`).
    pub(crate) fn prefix_len(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(KvPrefix::len)
            .next()
            .unwrap_or(0)
    }
}

/// The encoder's outputs for the real tokens only (input prompts are sliced off).
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// `[batch, seq, hidden]`
    pub last_hidden_state: Tensor<3>,
    /// `tanh(dense(h_[CLS]))`, `[batch, hidden]`, when the checkpoint has a pooler.
    pub pooled: Option<Tensor<2>>,
}

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

    /// Keep only the first `n` layers (the pretrained bottom of the stack).
    pub fn truncate_layers(mut self, n: usize) -> Self {
        self.encoder.layer.truncate(n);
        self
    }

    pub fn forward(&self, input: &EncoderInput, prompts: &Prompts) -> EncoderOutput {
        let [batch, seq] = input.input_ids.dims();
        let device = input.input_ids.device();
        assert!(
            prompts.layers.is_empty() || prompts.layers.len() == self.num_layers(),
            "prompts.layers has {} entries, the encoder {} layers",
            prompts.layers.len(),
            self.num_layers()
        );

        let (embedded, token_mask) = self.embed(input, prompts);
        let n_input_prompts = embedded.dims()[1] - seq;
        let relative = self.relative_bias(&embedded);

        // Prefix columns are always visible.
        let additive = additive_mask(token_mask.clone());
        let with_prefix = |p: usize| {
            if p == 0 {
                additive.clone()
            } else {
                Tensor::cat(
                    vec![Tensor::zeros([batch, 1, 1, p], &device), additive.clone()],
                    3,
                )
            }
        };

        let mut hidden = embedded.clone();
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let prefix = prompts.layers.get(i).and_then(Option::as_ref);
            let mask = match prefix.and_then(|p| p.mask.clone()) {
                Some(prefix_mask) => {
                    Tensor::cat(vec![additive_mask(prefix_mask), additive.clone()], 3)
                }
                None => with_prefix(prefix.map_or(0, KvPrefix::len)),
            };
            hidden = layer.forward(hidden, &mask, prefix, relative.as_ref());
            hidden = self.after_layer(i, &embedded, hidden, &token_mask);
        }

        let first_prompt = (prompts.pool_first_prompt && n_input_prompts > 0).then(|| {
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
        // The pooler reads the real [CLS], or the first prompt where the method asks for it;
        // without a pooler the head reads the [CLS] state itself, or the first prompt's.
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
                kernels::dense(&attention.key, hidden.clone()),
                kernels::dense(&attention.value, hidden.clone()),
            ));
            hidden = layer.forward(hidden, &mask, None, relative.as_ref());
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
        let total = words.dims()[1];
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
        let mut x = words;
        if let Some(table) = &emb.position_embeddings {
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
            x = x + table.forward(positions);
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

impl Layer {
    fn forward(
        &self,
        hidden: Tensor<3>,
        mask: &Tensor<4>,
        prefix: Option<&KvPrefix>,
        relative: Option<&RelativeBias>,
    ) -> Tensor<3> {
        let attended = self
            .attention
            .self_attn
            .forward(hidden.clone(), mask, prefix, relative);
        let hidden = self.attention.output.forward(attended, hidden);
        let inner = kernels::gelu(kernels::dense(&self.intermediate.dense, hidden.clone()));
        self.output.forward(inner, hidden)
    }
}

impl AddNorm {
    fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let sum = dropout::apply(&self.dropout, kernels::dense(&self.dense, x)) + residual;
        kernels::layer_norm(sum, &self.layer_norm, self.layer_norm_eps)
    }
}

impl SelfAttention {
    /// `[batch, seq, hidden]` → `[batch, heads, seq, head_dim]`
    pub(crate) fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, seq, hidden] = x.dims();
        x.reshape([batch, seq, self.num_heads, hidden / self.num_heads])
            .swap_dims(1, 2)
    }

    fn forward(
        &self,
        hidden: Tensor<3>,
        mask: &Tensor<4>,
        prefix: Option<&KvPrefix>,
        relative: Option<&RelativeBias>,
    ) -> Tensor<3> {
        let [batch, seq, width] = hidden.dims();
        let head_dim = width / self.num_heads;
        let scale = ((head_dim * self.scale_factor) as f64).sqrt();
        let query = self.split_heads(kernels::dense(&self.query, hidden.clone()));
        let mut key = self.split_heads(kernels::dense(&self.key, hidden.clone()));
        let mut value = self.split_heads(kernels::dense(&self.value, hidden));
        // The fused attention scales inside its gemm; burn's ops scale the query rather than the
        // scores (seq × head_dim numbers instead of seq × seq).
        let fused = relative.is_none() && kernels::on_flex(&query);
        let query = if fused { query } else { query / scale };
        // DeBERTa's position scores, over the real tokens only (before the prefix joins).
        let bias = relative.and_then(|r| r.scores(self, &query, &key, scale));
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
