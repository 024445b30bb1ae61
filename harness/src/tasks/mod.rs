//! The task registry: a task name → its files and format, how an example becomes model input,
//! its head and its metric. One file per task family.

pub mod glue;

use std::path::Path;

use anyhow::{bail, Result};
use burn::tensor::Device;
use ptv2_models::{EncoderInput, HeadKind, Logits, Targets, TextEncoder};

use crate::metrics;

/// The gold answer of a text example.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Class(usize),
    Value(f32),
}

/// A single text or a text pair with its label (GLUE/SuperGLUE-style classification, regression).
#[derive(Debug, Clone, PartialEq)]
pub struct TextExample {
    /// Where it came from, `file:line`, for predictions files and error messages.
    pub id: String,
    pub text: String,
    pub pair: Option<String>,
    pub label: Label,
}

/// How a task is scored. The first value a metric returns is the one that picks the best epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Accuracy,
    /// Accuracy and the F1 of class 1 (MRPC, QQP); F1 first.
    F1AndAccuracy,
    Matthews,
    PearsonSpearman,
    MacroF1AndAccuracy,
}

/// One prediction of a text task: a class or a value.
pub type Prediction = Label;

impl Metric {
    /// Named scores of predictions against gold labels, the main score first.
    pub fn score(&self, pred: &[Prediction], gold: &[Label], num_labels: usize) -> Vec<(String, f64)> {
        let classes = |labels: &[Label]| -> Vec<usize> {
            labels.iter().map(|l| match l { Label::Class(c) => *c, Label::Value(_) => 0 }).collect()
        };
        let values = |labels: &[Label]| -> Vec<f64> {
            labels.iter().map(|l| match l { Label::Value(v) => *v as f64, Label::Class(c) => *c as f64 }).collect()
        };
        let (p, g) = (classes(pred), classes(gold));
        match self {
            Self::Accuracy => vec![("accuracy".into(), metrics::accuracy(&p, &g))],
            Self::F1AndAccuracy => vec![
                ("f1".into(), metrics::f1_for_class(&p, &g, 1)),
                ("accuracy".into(), metrics::accuracy(&p, &g)),
            ],
            Self::Matthews => vec![("matthews".into(), metrics::matthews(&p, &g))],
            Self::MacroF1AndAccuracy => vec![
                ("macro_f1".into(), metrics::macro_f1(&p, &g, num_labels)),
                ("accuracy".into(), metrics::accuracy(&p, &g)),
            ],
            Self::PearsonSpearman => {
                let (p, g) = (values(pred), values(gold));
                vec![("pearson".into(), metrics::pearson(&p, &g)), ("spearman".into(), metrics::spearman(&p, &g))]
            }
        }
    }
}

/// A loaded task: what the model needs to know and its examples.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub head: HeadKind,
    /// Label names in class-index order (empty for regression).
    pub labels: Vec<String>,
    pub metric: Metric,
    pub train: Vec<TextExample>,
    pub dev: Vec<TextExample>,
}

/// Every task name the registry knows.
pub fn task_names() -> Vec<&'static str> {
    glue::TASKS.iter().map(|t| t.name).collect()
}

/// Load a task's train and dev splits from the data dir.
pub fn load_task(name: &str, data_dir: &Path) -> Result<Task> {
    if let Some(task) = glue::TASKS.iter().find(|t| t.name == name) {
        return glue::load(task, data_dir);
    }
    bail!("unknown task \"{name}\": expected one of {}", task_names().join(", "))
}

/// One batch: model input and, for training, targets.
pub struct Batch {
    pub input: EncoderInput,
    pub targets: Targets,
}

impl Task {
    pub fn batch(&self, examples: &[&TextExample], text: &TextEncoder, device: &Device) -> Result<Batch> {
        let pairs: Vec<(String, Option<String>)> = examples.iter().map(|e| (e.text.clone(), e.pair.clone())).collect();
        let tokens = text.encode_batch(&pairs)?;
        let targets = match self.head {
            HeadKind::Regression => Targets::Values(
                examples.iter().map(|e| match e.label { Label::Value(v) => v, Label::Class(c) => c as f32 }).collect(),
            ),
            _ => Targets::Classes(
                examples.iter().map(|e| match e.label { Label::Class(c) => c as i64, Label::Value(v) => v as i64 }).collect(),
            ),
        };
        Ok(Batch { input: tokens.to_input(device), targets })
    }

    /// Predictions from a batch's logits.
    pub fn predict(&self, logits: Logits) -> Vec<Prediction> {
        match logits {
            Logits::Sequence(logits) if self.head == HeadKind::Regression => {
                let values = logits.into_data().try_to_vec::<f32>().expect("f32 logits");
                values.into_iter().map(Label::Value).collect()
            }
            Logits::Sequence(logits) => {
                let best = logits.argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().expect("argmax");
                best.into_iter().map(|c| Label::Class(c as usize)).collect()
            }
            other => panic!("task {} got logits of another head: {other:?}", self.name),
        }
    }

    pub fn score(&self, pred: &[Prediction], examples: &[TextExample]) -> Vec<(String, f64)> {
        let gold: Vec<Label> = examples.iter().map(|e| e.label.clone()).collect();
        self.metric.score(pred, &gold, self.labels.len())
    }

    /// The name of a prediction for predictions files: the label name, or the value.
    pub fn prediction_text(&self, pred: &Prediction) -> String {
        match pred {
            Label::Class(c) => self.labels.get(*c).cloned().unwrap_or_else(|| c.to_string()),
            Label::Value(v) => format!("{v}"),
        }
    }
}
