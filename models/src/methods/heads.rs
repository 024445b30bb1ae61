//! Task heads, trainable under every method: new weights ~ N(0, 0.02), biases 0 (HF init).
//!
//! Every head is `dropout → Linear(H, C)` read off a different place: the pooled [CLS] for
//! sequence classification, regression (C = 1) and multiple choice (C = 1 per choice, reshaped);
//! every token for token classification; every token without dropout for span extraction (C = 2:
//! start and end), as the reference code does (notes §1.8). `TaskHead` is that classifier or the
//! verbalizer head (`verbalizer.rs`), which reads the checkpoint's masked-LM head instead.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::verbalizer::VerbalizerHead;
use crate::encoder::{Encoder, EncoderOutput};

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
#[allow(clippy::large_enum_variant)] // one per model or batch: a Box would only add indirection
#[derive(Debug, Clone)]
pub enum Logits {
    /// `[batch, classes]` (classification, multiple choice over choices) or `[batch, 1]` (regression)
    Sequence(Tensor<2>),
    /// `[batch, seq, labels]`
    Token(Tensor<3>),
    /// `[batch, seq]` each
    Span { start: Tensor<2>, end: Tensor<2> },
}

/// A new head: `dropout → Linear(hidden, outputs)`, weights N(0, init_std), bias 0.
#[derive(Config, Debug)]
pub struct HeadConfig {
    pub kind: HeadKind,
    pub hidden: usize,
    /// Before the classifier (none for spans, as the reference code).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// HF `initializer_range`.
    #[config(default = 0.02)]
    pub init_std: f64,
}

impl HeadConfig {
    pub fn init(&self, device: &Device) -> Head {
        let outputs = self.kind.outputs();
        let std = self.init_std;
        let mut classifier = LinearConfig::new(self.hidden, outputs)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device);
        classifier.bias = Some(Initializer::Zeros.init([outputs], device));
        let dropout = if self.kind == HeadKind::Span {
            0.0
        } else {
            self.dropout
        };
        Head {
            dropout: DropoutConfig::new(dropout).init(),
            classifier,
            kind: self.kind.clone(),
        }
    }
}

#[derive(Module, Debug)]
pub struct Head {
    pub(crate) dropout: Dropout,
    pub classifier: Linear,
    #[module(skip)]
    pub(crate) kind: HeadKind,
}

impl Head {
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

/// What turns the encoder's states into a task's logits.
#[allow(clippy::large_enum_variant)] // one per model: a Box would only add indirection
#[derive(Module, Debug)]
pub enum TaskHead {
    /// A new `dropout → Linear` (the paper's choice in the full-data setting).
    Classifier(Head),
    /// The checkpoint's masked-LM head at the template's `[MASK]`, one label word per class.
    Verbalizer(VerbalizerHead),
}

impl TaskHead {
    /// Logits of the encoder's output for inputs `input_ids`; `encoder` lends the verbalizer its
    /// word embeddings (the masked-LM decoder is tied to them).
    pub fn forward(
        &self,
        encoded: EncoderOutput,
        input_ids: &Tensor<2, Int>,
        encoder: &Encoder,
    ) -> Logits {
        match self {
            Self::Classifier(head) => head.forward(encoded),
            Self::Verbalizer(head) => Logits::Sequence(head.forward(
                encoded.last_hidden_state,
                input_ids,
                encoder.embeddings.word_embeddings.weight.val(),
            )),
        }
    }

    /// The classifier (a verbalizer has none).
    pub fn classifier(&self) -> Option<&Head> {
        match self {
            Self::Classifier(head) => Some(head),
            Self::Verbalizer(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::EncoderOutput;

    fn encoded(batch: usize, seq: usize, hidden: usize, device: &Device) -> EncoderOutput {
        EncoderOutput {
            last_hidden_state: Tensor::ones([batch, seq, hidden], device),
            pooled: Some(Tensor::ones([batch, hidden], device)),
        }
    }

    #[test]
    fn head_shapes() {
        let device = Device::flex();
        let shape = |kind: HeadKind| match HeadConfig::new(kind, 8)
            .init(&device)
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
        let head = HeadConfig::new(HeadKind::SequenceClassification { num_labels: 2 }, 64)
            .init(&Device::flex());
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
