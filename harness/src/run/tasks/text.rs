//! The family shape of GLUE and SuperGLUE: each example is one text (or text pair) with a class or
//! value, or — for multiple choice — one text pair per choice with the index of the right one.

use std::path::Path;

use anyhow::{bail, Result};
use burn::tensor::Device;
use ptv2_models::{HeadKind, Logits, Targets, TextEncoder};

use super::batching::predict_in_chunks;
use super::task::{argmax_ids, input_field, Batch, DevResult, InputName, Json, Predictor, Task};
use super::templates::Verbalizer;
use crate::records::metrics;

/// The gold answer of a text example.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Class(usize),
    Value(f32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextExample {
    /// Where it came from (`file:line`), for predictions files.
    pub id: String,
    /// One `(text, pair)` per model row: one for classification, one per choice for multiple choice.
    pub inputs: Vec<(String, Option<String>)>,
    pub label: Label,
}

impl TextExample {
    /// Characters over all rows: a cheap stand-in for its token count.
    pub fn size(&self) -> usize {
        self.inputs
            .iter()
            .map(|(a, b)| a.len() + b.as_ref().map_or(0, String::len))
            .sum()
    }

    pub fn single(id: String, text: String, pair: Option<String>, label: Label) -> Self {
        Self {
            id,
            inputs: vec![(text, pair)],
            label,
        }
    }
}

/// How a text task is scored; the first score picks the best epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Accuracy,
    /// F1 of class 1 (MRPC, QQP; MultiRC's F1a over all answer options), then accuracy.
    F1AndAccuracy,
    Matthews,
    PearsonSpearman,
    /// Accuracy, then macro-F1 (CB).
    AccuracyAndMacroF1,
}

impl Metric {
    pub fn main_name(&self) -> &'static str {
        match self {
            Self::Accuracy | Self::AccuracyAndMacroF1 => "accuracy",
            Self::F1AndAccuracy => "f1",
            Self::Matthews => "matthews",
            Self::PearsonSpearman => "pearson",
        }
    }

    /// Named scores, the main score first.
    pub fn score(&self, pred: &[Label], gold: &[Label], num_labels: usize) -> Vec<(String, f64)> {
        let classes = |labels: &[Label]| -> Vec<usize> {
            labels
                .iter()
                .map(|l| match l {
                    Label::Class(c) => *c,
                    Label::Value(v) => *v as usize,
                })
                .collect()
        };
        let values = |labels: &[Label]| -> Vec<f64> {
            labels
                .iter()
                .map(|l| match l {
                    Label::Value(v) => *v as f64,
                    Label::Class(c) => *c as f64,
                })
                .collect()
        };
        let (p, g) = (classes(pred), classes(gold));
        match self {
            Self::Accuracy => vec![("accuracy".into(), metrics::accuracy(&p, &g))],
            Self::F1AndAccuracy => vec![
                ("f1".into(), metrics::f1_for_class(&p, &g, 1)),
                ("accuracy".into(), metrics::accuracy(&p, &g)),
            ],
            Self::Matthews => vec![("matthews".into(), metrics::matthews(&p, &g))],
            Self::AccuracyAndMacroF1 => vec![
                ("accuracy".into(), metrics::accuracy(&p, &g)),
                ("macro_f1".into(), metrics::macro_f1(&p, &g, num_labels)),
            ],
            Self::PearsonSpearman => {
                let (p, g) = (values(pred), values(gold));
                vec![
                    ("pearson".into(), metrics::pearson(&p, &g)),
                    ("spearman".into(), metrics::spearman(&p, &g)),
                ]
            }
        }
    }
}

/// A loaded text task.
#[derive(Debug, Clone)]
pub struct TextTask {
    pub name: String,
    pub head: HeadKind,
    /// Label names in class-index order (choice numbers for multiple choice; empty for regression).
    pub labels: Vec<String>,
    pub metric: Metric,
    pub train: Vec<TextExample>,
    pub dev: Vec<TextExample>,
    /// The template inputs are wrapped in (the verbalizer head); None: encoded as they are.
    pub verbalizer: Option<Verbalizer>,
}

impl TextTask {
    /// A task over these labels (none: regression; with `multiple_choice`, one label per
    /// choice), scored by `metric`.
    pub fn new(
        name: &str,
        labels: &[&str],
        multiple_choice: bool,
        metric: Metric,
        (train, dev): (Vec<TextExample>, Vec<TextExample>),
    ) -> Self {
        let head = match (multiple_choice, labels.len()) {
            (true, choices) => HeadKind::MultipleChoice {
                num_choices: choices,
            },
            (false, 0) => HeadKind::Regression,
            (false, classes) => HeadKind::SequenceClassification {
                num_labels: classes,
            },
        };
        Self {
            name: name.into(),
            head,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            metric,
            train,
            dev,
            verbalizer: None,
        }
    }

    fn batch_of(
        &self,
        examples: &[&TextExample],
        text: &TextEncoder,
        device: &Device,
    ) -> Result<Batch> {
        let rows: Vec<(String, Option<String>)> = examples
            .iter()
            .flat_map(|e| e.inputs.iter().cloned())
            .collect();
        let tokens = match &self.verbalizer {
            Some(verbalizer) => {
                let pieces = rows
                    .iter()
                    .map(|(a, b)| verbalizer.wrap(a, b.as_deref()))
                    .collect::<Result<Vec<_>>>()?;
                text.encode_pieces(&pieces)?
            }
            None => text.encode_batch(&rows)?,
        };
        let targets = match self.head {
            HeadKind::Regression => Targets::Values(
                examples
                    .iter()
                    .map(|e| match e.label {
                        Label::Value(v) => v,
                        Label::Class(c) => c as f32,
                    })
                    .collect(),
            ),
            _ => Targets::Classes(
                examples
                    .iter()
                    .map(|e| match e.label {
                        Label::Class(c) => c as i64,
                        Label::Value(v) => v as i64,
                    })
                    .collect(),
            ),
        };
        Ok(Batch {
            input: tokens.to_input(device),
            targets,
        })
    }

    pub fn predict(&self, logits: Logits) -> Vec<Label> {
        match logits {
            Logits::Sequence(logits) if self.head == HeadKind::Regression => {
                let values = logits
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .expect("f32 logits");
                values.into_iter().map(Label::Value).collect()
            }
            Logits::Sequence(logits) => {
                let best = argmax_ids(logits, 1);
                best.into_iter().map(|c| Label::Class(c as usize)).collect()
            }
            other => panic!("task {} got logits of another head: {other:?}", self.name),
        }
    }

    /// The name of a label for predictions files: the label name, or the value.
    pub fn label_text(&self, label: &Label) -> String {
        match label {
            Label::Class(c) => self
                .labels
                .get(*c)
                .cloned()
                .unwrap_or_else(|| c.to_string()),
            Label::Value(v) => format!("{v}"),
        }
    }

    /// Parse a label back (for `ptv2 score`): its name, or its class index.
    pub fn parse_label(&self, text: &str) -> Option<Label> {
        let text = text.trim();
        if self.labels.is_empty() {
            return text.parse().ok().map(Label::Value);
        }
        let by_index = || text.parse().ok().filter(|&c| c < self.labels.len());
        self.labels
            .iter()
            .position(|l| l == text)
            .or_else(by_index)
            .map(Label::Class)
    }

    pub fn score(&self, pred: &[Label]) -> Vec<(String, f64)> {
        let gold: Vec<Label> = self.dev.iter().map(|e| e.label.clone()).collect();
        self.metric.score(pred, &gold, self.labels.len())
    }
}

impl TextTask {
    /// One `ptv2 predict` output per example: the label, and for classes the probabilities and
    /// logits in label order.
    fn outputs(&self, logits: Logits) -> Vec<serde_json::Value> {
        let Logits::Sequence(logits) = logits else {
            panic!("task {} got logits of another head", self.name)
        };
        let [rows, classes] = logits.dims();
        let values = logits
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 logits");
        (0..rows)
            .map(|r| {
                let row = &values[r * classes..(r + 1) * classes];
                if self.head == HeadKind::Regression {
                    return serde_json::json!({ "value": row[0] });
                }
                let top = row.iter().copied().fold(f32::MIN, f32::max);
                let exp: Vec<f32> = row.iter().map(|v| (v - top).exp()).collect();
                let sum: f32 = exp.iter().sum();
                let best = (0..classes)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0);
                let probabilities: Vec<f32> = exp.iter().map(|e| e / sum).collect();
                serde_json::json!({
                    "label": self.labels[best],
                    "label_id": best,
                    "probabilities": probabilities,
                    "logits": row,
                })
            })
            .collect()
    }
}

impl Task for TextTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn head(&self) -> HeadKind {
        self.head.clone()
    }

    fn main_metric(&self) -> &'static str {
        self.metric.main_name()
    }

    fn use_verbalizer(&mut self, verbalizer: Verbalizer) -> Result<()> {
        if !matches!(self.head, HeadKind::SequenceClassification { .. }) {
            bail!(
                "task {}: the verbalizer head takes classification tasks, not regression or multiple choice",
                self.name
            );
        }
        self.verbalizer = Some(verbalizer);
        Ok(())
    }

    fn verbalizer(&self) -> Option<&Verbalizer> {
        self.verbalizer.as_ref()
    }

    super::task::example_splits!(TextExample::size);

    fn train_batch(&self, indices: &[usize], text: &TextEncoder, device: &Device) -> Result<Batch> {
        let examples: Vec<&TextExample> = indices.iter().map(|&i| &self.train[i]).collect();
        self.batch_of(&examples, text, device)
    }

    fn predict(&self, with: &Predictor, inputs: &[Json], at: InputName) -> Result<Vec<Json>> {
        if matches!(self.head, HeadKind::MultipleChoice { .. }) {
            bail!(
                "ptv2 predict does not take multiple-choice tasks ({}) yet",
                self.name
            );
        }
        let examples = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let text = input_field(input, "text", &at(i))?.to_string();
                let pair = match input.get("pair") {
                    None => None,
                    Some(_) => Some(input_field(input, "pair", &at(i))?.to_string()),
                };
                Ok(TextExample::single(at(i), text, pair, Label::Class(0)))
            })
            .collect::<Result<Vec<_>>>()?;
        predict_in_chunks(&examples, TextExample::size, 32, |chunk| {
            let batch = self.batch_of(chunk, with.text, with.device)?;
            Ok(self.outputs(with.model.forward(&batch.input)?))
        })
    }

    fn evaluate(&self, with: &Predictor) -> Result<DevResult> {
        let (model, text, device) = (with.model, with.text, with.device);
        let predictions = predict_in_chunks(&self.dev, TextExample::size, 32, |examples| {
            let batch = self.batch_of(examples, text, device)?;
            Ok(self.predict(model.forward(&batch.input)?))
        })?;
        let mut tsv = String::from("id\tgold\tprediction\n");
        for (example, pred) in self.dev.iter().zip(&predictions) {
            tsv.push_str(&format!(
                "{}\t{}\t{}\n",
                example.id,
                self.label_text(&example.label),
                self.label_text(pred)
            ));
        }
        Ok(DevResult {
            scores: self.score(&predictions),
            predictions_file: "dev_predictions.tsv",
            predictions: tsv,
        })
    }

    fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }

    fn majority_scores(&self) -> Option<Vec<(String, f64)>> {
        let mut counts = vec![0usize; self.labels.len()];
        for example in &self.train {
            if let Label::Class(c) = example.label {
                *counts.get_mut(c)? += 1;
            }
        }
        // The most frequent class; on a tie the first.
        let majority = (0..counts.len()).max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))?;
        Some(self.score(&vec![Label::Class(majority); self.dev.len()]))
    }

    fn score_file(&self, path: &Path) -> Result<Vec<(String, f64)>> {
        let text = crate::records::data::read_text(path)?;
        let mut lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .collect();
        // ptv2's own predictions file: a header, then id, gold, prediction.
        let ptv2_tsv = lines
            .first()
            .is_some_and(|(_, l)| *l == "id\tgold\tprediction");
        if ptv2_tsv {
            lines.remove(0);
        }
        let mut predictions = vec![];
        for (number, line) in lines.into_iter().filter(|(_, l)| !l.trim().is_empty()) {
            let value = if ptv2_tsv {
                line.rsplit('\t').next().unwrap_or("")
            } else {
                line
            };
            match self.parse_label(value) {
                Some(label) => predictions.push(label),
                None => bail!(
                    "{}:{number}: \"{value}\" is not a label of {} (expected one of {})",
                    path.display(),
                    self.name,
                    self.labels.join(", ")
                ),
            }
        }
        if predictions.len() != self.dev.len() {
            bail!(
                "{}: {} predictions, the dev split of {} has {} examples",
                path.display(),
                predictions.len(),
                self.name,
                self.dev.len()
            );
        }
        Ok(self.score(&predictions))
    }
}
