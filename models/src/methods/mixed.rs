//! Many tasks in one forward pass (`ptv2 serve`): one frozen encoder, each group of rows with its
//! own adapter (PT prompts or a PT2 prefix) and its own head.
//!
//! Shorter prompts and prefixes are padded in front and masked, shorter inputs padded behind, so
//! every row computes what its own model alone would: a masked column gets -10000 before the
//! softmax, which makes its weight exactly 0, and each row keeps its own position ids.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::encoder::{Encoder, EncoderInput, EncoderOutput, KvPrefix, Prompts};
use crate::methods::heads::Logits;
use crate::methods::TunedModel;

/// Consecutive rows of a mixed batch: their input and the model whose adapter and head they use.
pub struct RowGroup<'a> {
    pub input: &'a EncoderInput,
    pub model: &'a TunedModel,
}

impl RowGroup<'_> {
    fn rows(&self) -> usize {
        self.input.input_ids.dims()[0]
    }
}

/// Every group through `encoder` in one pass; each group's logits as `model.forward(input)` gives
/// them (equal up to float summation order). The groups' models must have `encoder`'s weights
/// (PT and PT2 models of one frozen backbone, or one FT model and its own encoder).
pub fn forward_mixed(encoder: &Encoder, groups: &[RowGroup], pad_id: i64) -> Vec<Logits> {
    // A head that reads the first prompt needs it at position 0: such groups run alone.
    let pools_first = |g: &RowGroup| g.model.prompt().is_some_and(|p| !p.pool.is_cls());
    if groups.len() > 1 && groups.iter().any(pools_first) {
        return groups
            .iter()
            .flat_map(|g| forward_mixed(encoder, std::slice::from_ref(g), pad_id))
            .collect();
    }
    let device = groups[0].input.input_ids.device();
    let input = concat_inputs(groups, pad_id);
    let prompts = mixed_prompts(groups, encoder.num_layers(), &device);
    let encoded = encoder.forward(&input, &prompts);
    let mut start = 0;
    groups
        .iter()
        .map(|group| {
            let [rows, seq] = group.input.input_ids.dims();
            let own = EncoderOutput {
                last_hidden_state: encoded
                    .last_hidden_state
                    .clone()
                    .narrow(0, start, rows)
                    .narrow(1, 0, seq),
                pooled: encoded.pooled.clone().map(|p| p.narrow(0, start, rows)),
            };
            start += rows;
            group
                .model
                .head
                .forward(own, &group.input.input_ids, encoder)
        })
        .collect()
}

/// The groups' inputs as one batch, each padded behind to the longest (`pad_id`, mask 0).
fn concat_inputs(groups: &[RowGroup], pad_id: i64) -> EncoderInput {
    let longest = groups
        .iter()
        .map(|g| g.input.input_ids.dims()[1])
        .max()
        .unwrap_or(0);
    let pad = |t: &Tensor<2, Int>, value: i64| {
        let [rows, seq] = t.dims();
        if seq == longest {
            return t.clone();
        }
        let fill = Tensor::<2, Int>::ones([rows, longest - seq], &t.device()) * value;
        Tensor::cat(vec![t.clone(), fill], 1)
    };
    let cat = |part: &dyn Fn(&EncoderInput) -> Tensor<2, Int>| {
        Tensor::cat(groups.iter().map(|g| part(g.input)).collect(), 0)
    };
    EncoderInput {
        input_ids: cat(&|i| pad(&i.input_ids, pad_id)),
        attention_mask: cat(&|i| pad(&i.attention_mask, 0)),
        token_type_ids: cat(&|i| pad(&i.token_type_ids, 0)),
    }
}

/// `[1, ..., p, ...]` (the axis `axis` of length `p`, or absent) → `[rows, ..., widest, ...]`,
/// zeros in front; with the mask `[rows, widest]` of its real columns.
fn pad_front<const D: usize>(
    part: Option<Tensor<D>>,
    dims: [usize; D],
    axis: usize,
    rows: usize,
    device: &Device,
) -> (Tensor<D>, Tensor<2, Int>) {
    let widest = dims[axis];
    let real = part.as_ref().map_or(0, |t| t.dims()[axis]);
    let mut zero_dims = dims;
    zero_dims[0] = 1;
    zero_dims[axis] = widest - real;
    let padded = match part {
        Some(t) if real == widest => t,
        Some(t) => Tensor::cat(vec![Tensor::zeros(zero_dims, device), t], axis),
        None => Tensor::zeros(zero_dims, device),
    };
    let mut out_dims = dims;
    out_dims[0] = rows;
    let ones = Tensor::<2, Int>::ones([rows, real], device);
    let mask = if real == widest {
        ones
    } else if real == 0 {
        Tensor::zeros([rows, widest], device)
    } else {
        Tensor::cat(vec![Tensor::zeros([rows, widest - real], device), ones], 1)
    };
    (padded.expand(out_dims), mask)
}

/// Stack the groups' parts and masks; the mask is `None` when every row is real.
fn stack<const D: usize>(
    parts: Vec<(Tensor<D>, Tensor<2, Int>)>,
    uniform: bool,
) -> (Tensor<D>, Option<Tensor<2, Int>>) {
    let (tensors, masks): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    let mask = (!uniform).then(|| Tensor::cat(masks, 0));
    (Tensor::cat(tensors, 0), mask)
}

/// Layer `l`'s prefix of a batch of row groups: each group's prefix in its rows, shorter ones
/// padded in front and masked; `None` where no group has one at this layer.
fn mixed_prefix(
    groups: &[RowGroup],
    own: &[Prompts],
    l: usize,
    device: &Device,
) -> Option<KvPrefix> {
    let layer = |p: &Prompts| p.layers.get(l).and_then(Option::as_ref).cloned();
    let lens: Vec<usize> = own
        .iter()
        .map(|p| layer(p).map_or(0, |kv| kv.len()))
        .collect();
    let widest = lens.iter().copied().max().unwrap_or(0);
    if widest == 0 {
        return None;
    }
    let [_, heads, _, head_dim] = own.iter().find_map(layer).unwrap().key.dims();
    let dims = [1, heads, widest, head_dim];
    let uniform = lens.iter().all(|&n| n == widest);
    let side = |pick: fn(KvPrefix) -> Tensor<4>| {
        let parts = groups
            .iter()
            .zip(own)
            .map(|(g, p)| pad_front(layer(p).map(pick), dims, 2, g.rows(), device))
            .collect();
        stack(parts, uniform)
    };
    let (key, mask) = side(|kv| kv.key);
    let (value, _) = side(|kv| kv.value);
    Some(KvPrefix { key, value, mask })
}

/// The prompts of a batch of row groups, each group's adapter in its rows.
fn mixed_prompts(groups: &[RowGroup], num_layers: usize, device: &Device) -> Prompts {
    let own: Vec<Prompts> = groups.iter().map(|g| g.model.prompts(1)).collect();
    let mut prompts = Prompts {
        // Only ever one group here (`forward_mixed` runs such groups alone).
        pool_first_prompt: own.iter().any(|p| p.pool_first_prompt),
        ..Prompts::none()
    };

    let input_len = |p: &Prompts| p.input.as_ref().map_or(0, |t| t.dims()[1]);
    let widest = own.iter().map(input_len).max().unwrap_or(0);
    if widest > 0 {
        let hidden = own.iter().find_map(|p| p.input.as_ref()).unwrap().dims()[2];
        let parts = groups
            .iter()
            .zip(&own)
            .map(|(g, p)| pad_front(p.input.clone(), [1, widest, hidden], 1, g.rows(), device))
            .collect();
        let uniform = own.iter().all(|p| input_len(p) == widest);
        let (input, mask) = stack(parts, uniform);
        prompts.input = Some(input);
        prompts.input_mask = mask;
    }

    prompts.layers = (0..num_layers)
        .map(|l| mixed_prefix(groups, &own, l, device))
        .collect();
    if prompts.layers.iter().all(Option::is_none) {
        prompts.layers.clear();
    }

    let offsets: Vec<i64> = groups
        .iter()
        .zip(&own)
        .flat_map(|(g, p)| std::iter::repeat_n(p.prefix_len() as i64, g.rows()))
        .collect();
    if offsets.iter().any(|&o| o != offsets[0]) {
        let rows = offsets.len();
        prompts.row_offsets = Some(Tensor::from_data(
            TensorData::new(offsets, [rows, 1]),
            device,
        ));
    }
    prompts
}
