//! The seam between the encoder and the tuning methods: the token inputs, the prompts a method
//! adds (input prompt vectors before the word embeddings, per-layer key/value prefixes before the
//! real tokens' keys and values; reference notes §1.2–1.3, §8) and what the encoder returns.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Token-level inputs of one batch, all `[batch, seq]`.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    pub input_ids: Tensor<2, Int>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor<2, Int>,
    pub token_type_ids: Tensor<2, Int>,
}

impl EncoderInput {
    /// One segment's input (token types 0) from row-major `ids` and 1/0 `mask` of `[rows, cols]`.
    pub fn from_rows(ids: Vec<i64>, mask: Vec<i64>, shape: [usize; 2], device: &Device) -> Self {
        let tensor = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, shape), device);
        Self {
            input_ids: tensor(ids),
            attention_mask: tensor(mask),
            token_type_ids: tensor(vec![0; shape[0] * shape[1]]),
        }
    }
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
