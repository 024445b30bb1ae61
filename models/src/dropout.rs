//! Dropout with a cheap mask. burn's `Dropout` draws a Bernoulli tensor element by element from a
//! ChaCha generator, then multiplies twice; on the CPU that was ~10% of a MiniLM train step (the
//! attention-probability dropout alone is batch × heads × seq² numbers per layer). Here one number
//! from burn's seeded generator seeds a SplitMix64 stream that fills a mask already scaled by
//! 1/keep, and the input is multiplied once. On flex, `kernels::seeded_dropout` applies the same
//! mask without making it a tensor, and makes it again in the backward pass (the attention
//! probabilities' mask inside `fused_attention`, from `seed_and_keep`). Same semantics as
//! `Dropout::forward`: on only for a layer in training mode on an autodiff device; same seed,
//! same masks.

use std::sync::atomic::{AtomicU64, Ordering};

use burn::nn::Dropout;
use burn::tensor::{Distribution, Tensor, TensorData};

use crate::kernels::mask::keep_mask;

pub fn apply<const D: usize>(layer: &Dropout, input: Tensor<D>) -> Tensor<D> {
    let device = input.device();
    let Some((seed, keep)) = seed_and_keep(layer, &device) else {
        return input;
    };
    if crate::kernels::on_flex(&input) {
        return crate::kernels::seeded_dropout(input, seed, keep);
    }
    let shape = input.shape();
    let mask = keep_mask(seed, shape.num_elements(), keep);
    input * Tensor::from_data(TensorData::new(mask, shape), &device)
}

/// A mask's seed (drawn now) and keep probability when `layer` is on for a tensor on `device`;
/// `None` when it is off (evaluation, an inference device, or rate 0).
pub fn seed_and_keep(layer: &Dropout, device: &burn::tensor::Device) -> Option<(u64, f64)> {
    if !layer.training.is_enabled() || !device.is_autodiff() || layer.prob == 0.0 {
        return None;
    }
    Some((stream_seed(device), 1.0 - layer.prob))
}

/// How many masks this process has drawn from burn's generator. Masks are its only draws during
/// training, so a run that resumes puts the generator back where it was by replaying its count.
static DRAWS: AtomicU64 = AtomicU64::new(0);

pub fn draws() -> u64 {
    DRAWS.load(Ordering::SeqCst)
}

/// Advance burn's generator on `device` as `n` mask draws would.
pub fn replay_draws(device: &burn::tensor::Device, n: u64) {
    for _ in 0..n {
        stream_seed(device);
    }
}

/// 48 random bits from burn's process-wide generator (seeded by `Device::seed`).
fn stream_seed(device: &burn::tensor::Device) -> u64 {
    DRAWS.fetch_add(1, Ordering::SeqCst);
    let draws: Vec<f32> = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), device)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 draws");
    let bits = |x: f32| ((x as f64 * (1u64 << 24) as f64) as u64) & 0xff_ffff;
    (bits(draws[0]) << 24) | bits(draws[1])
}
