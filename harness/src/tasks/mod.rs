//! The task registry: a task name → its files and format, how an example becomes model input,
//! its head, its metric and its dev split. One file per task family:
//!
//! - `text.rs`: the shared shape of sentence(-pair) classification, regression and multiple choice;
//! - `glue.rs`, `superglue.rs`: readers that declare GLUE (TSV) and SuperGLUE (JSONL) tasks;
//! - `ner.rs`: CoNLL-column sequence labelling (IOB1/IOB2), seqeval entity F1;
//! - `qa.rs`: SQuAD-format extractive QA (v1.1 and v2.0), windows, n-best post-processing.

pub mod glue;
pub mod ner;
pub mod parquet;
pub mod qa;
pub mod superglue;
pub mod text;

use std::path::Path;

use anyhow::{bail, Result};
use burn::tensor::Device;
use ptv2_models::{EncoderInput, HeadKind, Targets, TextEncoder, TunedModel};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

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

/// What the training loop needs of a task, whatever its family.
pub trait Task: Send {
    fn name(&self) -> &str;
    fn head(&self) -> HeadKind;
    /// The metric that picks the best epoch (the first of `DevResult::scores`).
    fn main_metric(&self) -> &'static str;
    /// Keep a fixed random subset of `max_train` training examples (seed 0, the same for every run
    /// seed) and the first `max_eval` dev examples.
    fn subset(&mut self, max_train: Option<usize>, max_eval: Option<usize>);
    /// Tokenizer-dependent preparation (QA windows), after subsetting.
    fn prepare(&mut self, _text: &TextEncoder) -> Result<()> {
        Ok(())
    }
    /// Training units: examples, or QA windows.
    fn train_len(&self) -> usize;
    fn dev_len(&self) -> usize;
    fn train_batch(&self, indices: &[usize], text: &TextEncoder, device: &Device) -> Result<Batch>;
    /// Predict the dev split with `model` (dropout off) and score it.
    fn evaluate(
        &self,
        model: &TunedModel,
        text: &TextEncoder,
        device: &Device,
    ) -> Result<DevResult>;
    /// Score a predictions file against the dev split (`ptv2 score`), in the family's usual format:
    /// one label per line (or ptv2's `id gold prediction` TSV), CoNLL columns with the prediction
    /// last, or SQuAD's `{id: answer}` JSON.
    fn score_file(&self, path: &Path) -> Result<Vec<(String, f64)>>;
}

/// Every task name the registry knows.
pub fn task_names() -> Vec<String> {
    let mut names: Vec<String> = glue::TASKS.iter().map(|t| t.name.to_string()).collect();
    names.extend(superglue::TASKS.iter().map(|s| s.to_string()));
    names.extend(ner::TASKS.iter().map(|t| t.name.to_string()));
    names.extend(qa::TASKS.iter().map(|t| t.name.to_string()));
    names.push("conll:TRAIN_FILE,DEV_FILE".into());
    names.push("squad:TRAIN_FILE,DEV_FILE".into());
    names.push("squad2:TRAIN_FILE,DEV_FILE".into());
    names.push("parquet:TASK:TRAIN_FILE,DEV_FILE".into());
    names
}

/// Load a task's train and dev splits from the data dir. `conll:TRAIN,DEV`, `squad:TRAIN,DEV` and
/// `squad2:TRAIN,DEV` read any files of those formats by path.
pub fn load_task(name: &str, data_dir: &Path) -> Result<Box<dyn Task>> {
    if let Some(task) = glue::TASKS.iter().find(|t| t.name == name) {
        return Ok(Box::new(glue::load(task, data_dir)?));
    }
    if superglue::TASKS.contains(&name) {
        return Ok(Box::new(superglue::load(name, data_dir)?));
    }
    if let Some(task) = ner::TASKS.iter().find(|t| t.name == name) {
        return Ok(Box::new(ner::load(task, data_dir)?));
    }
    if let Some(files) = name.strip_prefix("conll:") {
        return Ok(Box::new(ner::load_paths(name, files)?));
    }
    if let Some(task) = qa::TASKS.iter().find(|t| t.name == name) {
        return Ok(Box::new(qa::load(task, data_dir)?));
    }
    if let Some(spec) = name.strip_prefix("parquet:") {
        return parquet::load(name, spec);
    }
    if let Some((kind, files)) = name
        .split_once(':')
        .filter(|(k, _)| *k == "squad" || *k == "squad2")
    {
        return Ok(Box::new(qa::load_paths(name, files, kind == "squad2")?));
    }
    bail!(
        "unknown task \"{name}\": expected one of {}",
        task_names().join(", ")
    )
}

/// Split `TRAIN,DEV` of a by-path task into two existing files.
pub fn train_dev_paths(
    name: &str,
    files: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let Some((train, dev)) = files.split_once(',') else {
        bail!("task \"{name}\": expected KIND:TRAIN_FILE,DEV_FILE");
    };
    let check = |p: &str| -> Result<std::path::PathBuf> {
        let path = std::path::PathBuf::from(p);
        if !path.is_file() {
            bail!("task {name}: missing file {}", path.display());
        }
        Ok(path)
    };
    Ok((check(train)?, check(dev)?))
}

/// The fixed training subset and dev prefix every family uses.
pub fn take_subset<T>(
    train: &mut Vec<T>,
    dev: &mut Vec<T>,
    max_train: Option<usize>,
    max_eval: Option<usize>,
) {
    if let Some(n) = max_train.filter(|&n| n < train.len()) {
        train.shuffle(&mut StdRng::seed_from_u64(0));
        train.truncate(n);
    }
    if let Some(n) = max_eval {
        dev.truncate(n);
    }
}
