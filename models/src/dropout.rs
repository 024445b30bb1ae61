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

/// A kept element's 32 random bits fall below `threshold`; it is scaled by `scale` = 1/keep.
pub fn threshold_and_scale(keep: f64) -> (u64, f32) {
    ((keep * 4_294_967_296.0) as u64, (1.0 / keep) as f32)
}

/// SplitMix64's `k`-th output (from 0) for `seed`: its state is `seed + (k + 1)·γ`.
#[inline(always)]
pub fn splitmix(seed: u64, k: u64) -> u64 {
    let mut z = seed.wrapping_add((k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` values, each 1/keep with probability `keep`, else 0: two per SplitMix64 output.
pub fn keep_mask(seed: u64, n: usize, keep: f64) -> Vec<f32> {
    let (threshold, scale) = threshold_and_scale(keep);
    let mut mask = Vec::with_capacity(n);
    for k in 0..n.div_ceil(2) as u64 {
        let z = splitmix(seed, k);
        for half in [z & 0xffff_ffff, z >> 32] {
            if mask.len() < n {
                mask.push(if half < threshold { scale } else { 0.0 });
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_asked_fraction_scaled() {
        let mask = keep_mask(7, 100_000, 0.9);
        let kept = mask.iter().filter(|&&m| m > 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
        assert!(mask
            .iter()
            .all(|&m| m == 0.0 || (m - 1.0 / 0.9).abs() < 1e-6));
        let mean = mask.iter().map(|&m| m as f64).sum::<f64>() / mask.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        assert_eq!(mask, keep_mask(7, 100_000, 0.9));
        assert_ne!(mask, keep_mask(8, 100_000, 0.9));
    }
}
