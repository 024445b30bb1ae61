//! The training losses of the heads' logits: cross-entropy (ignoring `IGNORE_INDEX`), MSE for
//! regression, the mean of start and end cross-entropies for spans.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

use crate::methods::heads::Logits;

/// Targets of one batch, matching the head's `Logits`.
#[derive(Debug, Clone)]
pub enum Targets {
    /// Class index per row (per question for multiple choice).
    Classes(Vec<i64>),
    /// One value per row (regression).
    Values(Vec<f32>),
    /// Label per token, `[batch][seq]`, `IGNORE_INDEX` where no label applies.
    Tokens(Vec<Vec<i64>>),
    /// Start and end token per row.
    Spans(Vec<(i64, i64)>),
}

/// Targets with this value take no part in the loss (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// Mean cross-entropy over the rows whose target is not `IGNORE_INDEX`: `[rows, classes]`, `[rows]`.
pub fn cross_entropy(logits: Tensor<2>, targets: &[i64]) -> Tensor<1> {
    let device = logits.device();
    let rows = targets.len();
    let index: Vec<i64> = targets.iter().map(|&t| t.max(0)).collect();
    let keep: Vec<f32> = targets
        .iter()
        .map(|&t| if t == IGNORE_INDEX { 0.0 } else { 1.0 })
        .collect();
    let kept = keep.iter().sum::<f32>().max(1.0);
    let index = Tensor::<2, Int>::from_data(TensorData::new(index, [rows, 1]), &device);
    let keep = Tensor::<1>::from_data(TensorData::new(keep, [rows]), &device);
    let picked = log_softmax(logits, 1).gather(1, index).reshape([rows]);
    (picked * keep).sum().neg() / kept
}

/// The training loss of a head's logits: cross-entropy, MSE for regression, and for spans the
/// mean of the start and end cross-entropies.
pub fn loss(logits: Logits, targets: &Targets) -> Tensor<1> {
    match (logits, targets) {
        (Logits::Sequence(logits), Targets::Classes(classes)) => cross_entropy(logits, classes),
        (Logits::Sequence(logits), Targets::Values(values)) => {
            let device = logits.device();
            let rows = values.len();
            let target =
                Tensor::<2>::from_data(TensorData::new(values.clone(), [rows, 1]), &device);
            (logits - target).powf_scalar(2.0).mean()
        }
        (Logits::Token(logits), Targets::Tokens(labels)) => {
            let [batch, seq, classes] = logits.dims();
            let flat: Vec<i64> = labels.iter().flatten().copied().collect();
            assert_eq!(
                flat.len(),
                batch * seq,
                "token targets must be [batch][seq]"
            );
            cross_entropy(logits.reshape([batch * seq, classes]), &flat)
        }
        (Logits::Span { start, end }, Targets::Spans(spans)) => {
            let starts: Vec<i64> = spans.iter().map(|s| s.0).collect();
            let ends: Vec<i64> = spans.iter().map(|s| s.1).collect();
            (cross_entropy(start, &starts) + cross_entropy(end, &ends)) / 2.0
        }
        (logits, targets) => panic!("targets {targets:?} do not fit logits {logits:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn cross_entropy_matches_hand_computation_and_ignores_index() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 0.5, 0.5, 3.0, -1.0], [3, 2]),
            &device,
        );
        // Row 1 is ignored.
        let loss = cross_entropy(logits, &[1, IGNORE_INDEX, 0]).into_scalar::<f32>();
        let ln = |a: f32, b: f32, pick: f32| -(pick - (a.exp() + b.exp()).ln());
        let expected = (ln(1.0, 2.0, 2.0) + ln(3.0, -1.0, 3.0)) / 2.0;
        assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
    }
}
