//! What every task family provides and uses: the `Task` trait the training loop calls, a batch,
//! a dev result, where the splits come from (`Source`), and the subset rule.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::{Device, Tensor};
use ptv2_models::{EncoderInput, HeadKind, Logits, Targets, TextEncoder, TunedModel};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::parquet;
use super::templates::Verbalizer;
use crate::records::settings::Subset;

/// One batch: model input and targets.
pub struct Batch {
    pub input: EncoderInput,
    pub targets: Targets,
}

/// Scores on dev (the main one first) and the predictions file's name and contents.
pub struct DevResult {
    pub scores: Vec<(String, f64)>,
    pub predictions_file: &'static str,
    pub predictions: String,
}

/// A string field of a `ptv2 predict` input, or an error naming the input and the field.
pub fn input_field<'a>(input: &'a serde_json::Value, key: &str, at: &str) -> Result<&'a str> {
    input
        .get(key)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("{at}: expected a string field \"{key}\""))
}

/// What turns a batch of model input into logits: a model in evaluation mode, or a server's
/// queue that batches many tasks' inputs into one forward pass (`serve.rs`).
pub trait Forward {
    fn forward(&self, input: &EncoderInput) -> Result<Logits>;
}

impl Forward for TunedModel {
    fn forward(&self, input: &EncoderInput) -> Result<Logits> {
        Ok(TunedModel::forward(self, input))
    }
}

/// What predicts: a model (or a server's queue), its tokenizer and its device.
pub struct Predictor<'a> {
    pub model: &'a dyn Forward,
    pub text: &'a TextEncoder,
    pub device: &'a Device,
}

/// A JSON value: a `ptv2 predict` input or output.
pub type Json = serde_json::Value;

/// How errors name input `i` of a `ptv2 predict` call (`input.jsonl:3`, `inputs[2]`).
pub type InputName<'a> = &'a dyn Fn(usize) -> String;

/// What the training loop needs of a task, whatever its family.
pub trait Task: Send + Sync {
    fn name(&self) -> &str;
    fn head(&self) -> HeadKind;
    /// The metric that picks the best epoch (the first of `DevResult::scores`).
    fn main_metric(&self) -> &'static str;
    /// Keep `max_train` training examples — a fixed random draw (seed 0, the same for every run
    /// seed) or the first ones — and the first `max_eval` dev examples.
    fn subset(&mut self, max_train: Option<usize>, max_eval: Option<usize>, draw: Subset);
    /// Tokenizer-dependent preparation (QA windows), after subsetting.
    fn prepare(&mut self, _text: &TextEncoder) -> Result<()> {
        Ok(())
    }
    /// Wrap every input in a template with a `[MASK]`, for the verbalizer head (discrete
    /// prompting, `head = verbalizer`). Only classification text tasks take one.
    fn use_verbalizer(&mut self, _verbalizer: Verbalizer) -> Result<()> {
        anyhow::bail!(
            "task {}: the verbalizer head and discrete prompting read a label word at a [MASK]; they take classification tasks of GLUE and SuperGLUE (not NER, QA, regression or multiple choice)",
            self.name()
        )
    }
    /// The template its inputs are wrapped in, if any.
    fn verbalizer(&self) -> Option<&Verbalizer> {
        None
    }
    /// Training units: examples, or QA windows.
    fn train_len(&self) -> usize;
    /// Training units known before `prepare`: `train_len`, but QA's examples (each makes one
    /// or more windows only once tokenized), for `sweep --dry-run`'s estimate.
    fn planned_train_len(&self) -> usize {
        self.train_len()
    }
    /// A cheap size of each training unit (characters or tokens), for batches of similar length.
    fn train_sizes(&self) -> Vec<usize>;
    fn dev_len(&self) -> usize;
    fn train_batch(&self, indices: &[usize], text: &TextEncoder, device: &Device) -> Result<Batch>;
    /// Predict the dev split with the model (dropout off) and score it.
    fn evaluate(&self, with: &Predictor) -> Result<DevResult>;
    /// Predict new inputs, each a JSON object in the family's input shape (`ptv2 predict`):
    /// `{"text", "pair"?}`, `{"tokens": [...]}`, `{"question", "context"}`. `at(i)` names input
    /// i in errors. One output object per input, in input order.
    fn predict(&self, with: &Predictor, inputs: &[Json], at: InputName) -> Result<Vec<Json>>;
    /// Label names in class order; empty where predictions are not classes (NER, QA, regression).
    fn labels(&self) -> Vec<String> {
        vec![]
    }
    /// Dev scores of always predicting the training split's most frequent label: the level a
    /// method that learned nothing reaches. None where no such constant prediction exists.
    fn majority_scores(&self) -> Option<Vec<(String, f64)>> {
        None
    }
    /// Score a predictions file against the dev split (`ptv2 score`), in the family's usual format:
    /// one label per line (or ptv2's `id gold prediction` TSV), CoNLL columns with the prediction
    /// last, or SQuAD's `{id: answer}` JSON.
    fn score_file(&self, path: &Path) -> Result<Vec<(String, f64)>>;
}

/// Where a task's two splits come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The task's declared files under the data dir, in their original format.
    DataDir(PathBuf),
    /// Any two files of the task family's format (`NAME:TRAIN,DEV`).
    Files { train: PathBuf, dev: PathBuf },
    /// Hugging Face `datasets` Parquet exports (`parquet:NAME:TRAIN,DEV`).
    Parquet { train: PathBuf, dev: PathBuf },
}

impl Source {
    /// Both splits: `declared` names the data-dir files, `native` reads one file of the family's
    /// format, `row` turns one Parquet row into examples (`parquet::read_rows`).
    pub fn read<T>(
        &self,
        declared: impl FnOnce(&Path) -> Result<(PathBuf, PathBuf)>,
        native: impl Fn(&Path) -> Result<Vec<T>>,
        row: impl Fn(serde_json::Map<String, serde_json::Value>, &str, &str) -> Result<Vec<T>>,
    ) -> Result<(Vec<T>, Vec<T>)> {
        match self {
            Self::DataDir(dir) => {
                let (train, dev) = declared(dir)?;
                Ok((native(&train)?, native(&dev)?))
            }
            Self::Files { train, dev } => Ok((native(train)?, native(dev)?)),
            Self::Parquet { train, dev } => Ok((
                parquet::read_rows(train, &row)?,
                parquet::read_rows(dev, &row)?,
            )),
        }
    }
}

/// The `Task` methods of a family whose training units are its `train` examples (all but QA,
/// whose units are windows): the subset, the split lengths, each example's size.
macro_rules! example_splits {
    ($size:path) => {
        fn subset(
            &mut self,
            max_train: Option<usize>,
            max_eval: Option<usize>,
            draw: $crate::records::settings::Subset,
        ) {
            $crate::run::tasks::task::take_subset(
                &mut self.train,
                &mut self.dev,
                max_train,
                max_eval,
                draw,
            );
        }

        fn train_len(&self) -> usize {
            self.train.len()
        }

        fn dev_len(&self) -> usize {
            self.dev.len()
        }

        fn train_sizes(&self) -> Vec<usize> {
            self.train.iter().map($size).collect()
        }
    };
}
pub(crate) use example_splits;

/// The fixed training subset and dev prefix every family uses.
pub fn take_subset<T>(
    train: &mut Vec<T>,
    dev: &mut Vec<T>,
    max_train: Option<usize>,
    max_eval: Option<usize>,
    draw: Subset,
) {
    if let Some(n) = max_train.filter(|&n| n < train.len()) {
        if draw == Subset::Random {
            train.shuffle(&mut StdRng::seed_from_u64(0));
        }
        train.truncate(n);
    }
    if let Some(n) = max_eval {
        dev.truncate(n);
    }
}

/// The index of the largest value along `dim`, for every row: predicted classes or tags.
pub fn argmax_ids<const D: usize>(logits: Tensor<D>, dim: usize) -> Vec<i64> {
    logits
        .argmax(dim)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("argmax")
}
