//! Task heads, trainable under every method: new weights ~ N(0, 0.02), biases 0 (HF init).
//!
//! Every head is `dropout → Linear(H, C)` read off a different place: the pooled [CLS] for
//! sequence classification, regression (C = 1) and multiple choice (C = 1 per choice, reshaped);
//! every token for token classification; every token without dropout for span extraction (C = 2:
//! start and end), as the reference code does (notes §1.8).

use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::bert::EncoderOutput;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadKind {
    SequenceClassification { num_labels: usize },
    Regression,
    MultipleChoice { num_choices: usize },
    TokenClassification { num_labels: usize },
    Span,
}

impl HeadKind {
    fn outputs(&self) -> usize {
        match self {
            Self::SequenceClassification { num_labels }
            | Self::TokenClassification { num_labels } => *num_labels,
            Self::Regression | Self::MultipleChoice { .. } => 1,
            Self::Span => 2,
        }
    }
}

/// What a head produces.
#[derive(Debug, Clone)]
pub enum Logits {
    /// `[batch, classes]` (classification, multiple choice over choices) or `[batch, 1]` (regression)
    Sequence(Tensor<2>),
    /// `[batch, seq, labels]`
    Token(Tensor<3>),
    /// `[batch, seq]` each
    Span { start: Tensor<2>, end: Tensor<2> },
}

#[derive(Module, Debug)]
pub struct Head {
    pub dropout: Dropout,
    pub classifier: Linear,
    #[module(skip)]
    pub kind: HeadKind,
}

impl Head {
    pub fn init(kind: &HeadKind, hidden: usize, dropout: f64, std: f64, device: &Device) -> Self {
        let mut classifier = LinearConfig::new(hidden, kind.outputs())
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device);
        classifier.bias = Some(Initializer::Zeros.init([kind.outputs()], device));
        Self {
            // QA applies no dropout before its head.
            dropout: DropoutConfig::new(if *kind == HeadKind::Span {
                0.0
            } else {
                dropout
            })
            .init(),
            classifier,
            kind: kind.clone(),
        }
    }

    pub fn forward(&self, encoded: EncoderOutput) -> Logits {
        match self.kind {
            HeadKind::SequenceClassification { .. }
            | HeadKind::Regression
            | HeadKind::MultipleChoice { .. } => {
                // The checkpoint's pooler when it has one, else the [CLS] hidden state.
                let pooled = encoded.pooled.unwrap_or_else(|| {
                    let [batch, _, hidden] = encoded.last_hidden_state.dims();
                    encoded
                        .last_hidden_state
                        .narrow(1, 0, 1)
                        .reshape([batch, hidden])
                });
                let logits = self
                    .classifier
                    .forward(crate::dropout::apply(&self.dropout, pooled));
                if let HeadKind::MultipleChoice { num_choices } = self.kind {
                    // Rows come in groups of `num_choices`, one group per question.
                    let rows = logits.dims()[0];
                    Logits::Sequence(logits.reshape([rows / num_choices, num_choices]))
                } else {
                    Logits::Sequence(logits)
                }
            }
            HeadKind::TokenClassification { .. } => Logits::Token(self.classifier.forward(
                crate::dropout::apply(&self.dropout, encoded.last_hidden_state),
            )),
            HeadKind::Span => {
                let logits = self.classifier.forward(encoded.last_hidden_state);
                let [batch, seq, _] = logits.dims();
                Logits::Span {
                    start: logits.clone().narrow(2, 0, 1).reshape([batch, seq]),
                    end: logits.narrow(2, 1, 1).reshape([batch, seq]),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bert::EncoderOutput;

    fn encoded(batch: usize, seq: usize, hidden: usize, device: &Device) -> EncoderOutput {
        EncoderOutput {
            last_hidden_state: Tensor::ones([batch, seq, hidden], device),
            pooled: Some(Tensor::ones([batch, hidden], device)),
        }
    }

    #[test]
    fn head_shapes() {
        let device = Device::flex();
        let shape = |kind: HeadKind| match Head::init(&kind, 8, 0.1, 0.02, &device)
            .forward(encoded(6, 5, 8, &device))
        {
            Logits::Sequence(t) => t.dims().to_vec(),
            Logits::Token(t) => t.dims().to_vec(),
            Logits::Span { start, end } => {
                assert_eq!(start.dims(), end.dims());
                start.dims().to_vec()
            }
        };
        assert_eq!(
            shape(HeadKind::SequenceClassification { num_labels: 3 }),
            vec![6, 3]
        );
        assert_eq!(shape(HeadKind::Regression), vec![6, 1]);
        assert_eq!(
            shape(HeadKind::MultipleChoice { num_choices: 2 }),
            vec![3, 2]
        );
        assert_eq!(
            shape(HeadKind::TokenClassification { num_labels: 9 }),
            vec![6, 5, 9]
        );
        assert_eq!(shape(HeadKind::Span), vec![6, 5]);
    }

    #[test]
    fn new_head_has_zero_bias_and_small_weights() {
        let head = Head::init(
            &HeadKind::SequenceClassification { num_labels: 2 },
            64,
            0.1,
            0.02,
            &Device::flex(),
        );
        let bias = head
            .classifier
            .bias
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(bias.iter().all(|&b| b == 0.0));
        let std = head
            .classifier
            .weight
            .val()
            .powf_scalar(2.0)
            .mean()
            .sqrt()
            .into_scalar::<f32>();
        assert!((0.01..0.03).contains(&std), "weight std {std}");
    }
}

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
mod loss_tests {
    use super::*;

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
