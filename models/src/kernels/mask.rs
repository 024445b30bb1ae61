//! The dropout mask stream: one 48-bit seed → SplitMix64 → a keep mask scaled by 1/keep. A leaf:
//! `dropout.rs` draws the seeds, the kernels (and the fused attention's backward pass) make the
//! same masks again from them.

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
