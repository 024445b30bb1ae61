//! The task registry: a task name → its files and format, how an example becomes model input,
//! its head, its metric and its dev split. One file per task family:
//!
//! - `text.rs`: the shared shape of sentence(-pair) classification, regression and multiple choice;
//! - `glue.rs`, `superglue.rs`: readers that declare GLUE (TSV) and SuperGLUE (JSONL) tasks;
//! - `ner.rs`: CoNLL-column sequence labelling (IOB1/IOB2), seqeval entity F1;
//! - `qa.rs`: SQuAD-format extractive QA (v1.1 and v2.0), windows, n-best post-processing;
//! - `parquet.rs`: Hugging Face Parquet exports, a file source any family reads from.
//!
//! One registry (`registry`): each family declares its tasks in a `TASKS` table, and every task
//! reads from any `Source`: its files in the data dir, two files by path, or Parquet.

pub mod glue;
pub mod ner;
pub mod parquet;
pub mod qa;
pub mod superglue;
pub mod text;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use burn::tensor::Device;
use ptv2_models::{EncoderInput, HeadKind, Logits, Targets, TextEncoder, TunedModel};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::records::settings::{Batching, Subset};

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
    /// Training units: examples, or QA windows.
    fn train_len(&self) -> usize;
    /// A cheap size of each training unit (characters or tokens), for batches of similar length.
    fn train_sizes(&self) -> Vec<usize>;
    fn dev_len(&self) -> usize;
    fn train_batch(&self, indices: &[usize], text: &TextEncoder, device: &Device) -> Result<Batch>;
    /// Predict the dev split with the model (dropout off) and score it.
    fn evaluate(&self, with: &Predictor) -> Result<DevResult>;
    /// Predict new inputs, each a JSON object in the family's input shape (`ptv2 predict`):
    /// `{"text", "pair"?}`, `{"tokens": [...]}`, `{"question", "context"}`. `at(i)` names input
    /// i in errors. One output object per input, in input order.
    fn predict(
        &self,
        with: &Predictor,
        inputs: &[serde_json::Value],
        at: &dyn Fn(usize) -> String,
    ) -> Result<Vec<serde_json::Value>>;
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

/// A task of the registry: its family and the family's declaration of it (files, template,
/// labels, metric).
#[derive(Debug, Clone, Copy)]
pub enum TaskSpec {
    Glue(&'static glue::GlueTask),
    SuperGlue(&'static superglue::SuperGlueTask),
    Ner(&'static ner::NerTask),
    Qa(&'static qa::QaSpec),
}

/// The task registry: every family's declared tasks. A new task is an entry in its family's
/// `TASKS`; a new family is a variant here.
pub fn registry() -> impl Iterator<Item = TaskSpec> {
    let glue = glue::TASKS.iter().map(TaskSpec::Glue);
    let superglue = superglue::TASKS.iter().map(TaskSpec::SuperGlue);
    let ner = ner::TASKS.iter().map(TaskSpec::Ner);
    glue.chain(superglue)
        .chain(ner)
        .chain(qa::TASKS.iter().map(TaskSpec::Qa))
}

impl TaskSpec {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Glue(t) => t.name,
            Self::SuperGlue(t) => t.name,
            Self::Ner(t) => t.name,
            Self::Qa(t) => t.name,
        }
    }

    pub fn load(&self, source: &Source) -> Result<Box<dyn Task>> {
        Ok(match self {
            Self::Glue(t) => Box::new(glue::load(t, source)?),
            Self::SuperGlue(t) => Box::new(superglue::load(t, source)?),
            Self::Ner(t) => Box::new(ner::load(t, source)?),
            Self::Qa(t) => Box::new(qa::load(t, source)?),
        })
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
            $crate::run::tasks::take_subset(&mut self.train, &mut self.dev, max_train, max_eval, draw);
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

/// Every task name the registry knows, and the by-path forms.
pub fn task_names() -> Vec<String> {
    let mut names: Vec<String> = registry().map(|t| t.name().to_string()).collect();
    names.push("NAME:TRAIN_FILE,DEV_FILE".into());
    names.push("parquet:NAME:TRAIN_FILE,DEV_FILE".into());
    names
}

/// Split `TRAIN,DEV` of a by-path task into two existing files.
fn train_dev_paths(name: &str, files: &str) -> Result<(PathBuf, PathBuf)> {
    let Some((train, dev)) = files.split_once(',') else {
        bail!("task \"{name}\": expected NAME:TRAIN_FILE,DEV_FILE");
    };
    let check = |p: &str| -> Result<PathBuf> {
        let path = PathBuf::from(p);
        if !path.is_file() {
            bail!("task {name}: missing file {}", path.display());
        }
        Ok(path)
    };
    Ok((check(train)?, check(dev)?))
}

/// The test-split view of a data-dir task that has a labelled test split (CoNLL-2003, WNUT-17):
/// the same task with its test file as the dev split (`NAME:TRAIN,TEST`), so that the task's own
/// code subsets (`max_eval`), predicts and scores it. None for tasks without one (GLUE's and
/// SuperGLUE's test labels are not public) and for tasks read by path or from Parquet.
pub fn test_view(name: &str, data_dir: &Path) -> Option<String> {
    let TaskSpec::Ner(ner::NerTask {
        files: Some((train, _)),
        test: Some(test),
        ..
    }) = registry().find(|t| t.name() == name)?
    else {
        return None;
    };
    let (train, test) = (data_dir.join(train), data_dir.join(test));
    Some(format!("{name}:{},{}", train.display(), test.display()))
}

/// Load a task's train and dev splits: `NAME` from the data dir, `NAME:TRAIN,DEV` from any two
/// files of its format (`conll:…` any CoNLL files, `squad:…` / `squad2:…` any SQuAD v1.1 / v2.0
/// files), `parquet:NAME:TRAIN,DEV` from Hugging Face Parquet exports.
pub fn load_task(name: &str, data_dir: &Path) -> Result<Box<dyn Task>> {
    let (task, source) = match name.split_once(':') {
        None => (name, Source::DataDir(data_dir.to_path_buf())),
        Some(("parquet", rest)) => {
            let Some((task, files)) = rest.split_once(':') else {
                bail!("task \"{name}\": expected parquet:NAME:TRAIN_FILE,DEV_FILE");
            };
            let (train, dev) = train_dev_paths(name, files)?;
            (task, Source::Parquet { train, dev })
        }
        Some((task, files)) => {
            let (train, dev) = train_dev_paths(name, files)?;
            (task, Source::Files { train, dev })
        }
    };
    let task = if task == "squad2" { "squad_v2" } else { task };
    let Some(spec) = registry().find(|t| t.name() == task) else {
        bail!(
            "unknown task \"{name}\": expected one of {}",
            task_names().join(", ")
        )
    };
    spec.load(&source)
}

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

/// One epoch's training batches, of similar length as HF's `group_by_length` makes them: shuffle,
/// cut into mega-batches of 50 batches, sort each by size (longest first), cut into batches, then
/// shuffle the batches. Padding to the longest in a batch then costs little (RTE: 67 instead of
/// 126 tokens a row on average).
pub fn length_grouped_batches(
    sizes: &[usize],
    batch_size: usize,
    rng: &mut StdRng,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.shuffle(rng);
    let mut batches: Vec<Vec<usize>> = vec![];
    for mega in order.chunks_mut(batch_size * 50) {
        mega.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
        batches.extend(mega.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// One epoch's training batches as `batching` asks: length-grouped, or a plain shuffle cut into
/// batches (a PyTorch `RandomSampler`'s order, drawn from `rng`).
pub fn epoch_batches(
    sizes: &[usize],
    batch_size: usize,
    batching: Batching,
    rng: &mut StdRng,
) -> Vec<Vec<usize>> {
    match batching {
        Batching::Grouped => length_grouped_batches(sizes, batch_size, rng),
        Batching::Random => {
            let mut order: Vec<usize> = (0..sizes.len()).collect();
            order.shuffle(rng);
            order.chunks(batch_size).map(<[usize]>::to_vec).collect()
        }
    }
}

/// Predictions for every dev unit, in dev order: the units go through `predict` in chunks of
/// similar size (little padding), longest first, each chunk about as large in padded size as
/// `chunk_size` of the longest units (`size_sorted_chunks`).
pub fn predict_in_chunks<T, P>(
    units: &[T],
    size: impl Fn(&T) -> usize,
    chunk_size: usize,
    mut predict: impl FnMut(&[&T]) -> Result<Vec<P>>,
) -> Result<Vec<P>> {
    let sizes: Vec<usize> = units.iter().map(size).collect();
    let chunks = size_sorted_chunks(&sizes, chunk_size);
    let mut predictions = Vec::with_capacity(units.len());
    for chunk in &chunks {
        let refs: Vec<&T> = chunk.iter().map(|&i| &units[i]).collect();
        predictions.extend(predict(&refs)?);
    }
    Ok(in_dev_order(&chunks, predictions))
}

/// Dev indices in chunks of similar size, longest first, for evaluation; `in_dev_order` puts the
/// predictions back. Chunks are sized by padded size, not count: the longest units go
/// `chunk_size` at a time, shorter ones as many as fit in the same budget (count × the chunk's
/// longest size; sizes are characters, a proxy for tokens), at most `MAX_CHUNK_FACTOR` ×
/// `chunk_size`: larger matmuls for short sentences at the memory of the longest chunk.
fn size_sorted_chunks(sizes: &[usize], chunk_size: usize) -> Vec<Vec<usize>> {
    const MAX_CHUNK_FACTOR: usize = 8;
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let budget = chunk_size * order.first().map_or(1, |&i| sizes[i].max(1));
    let mut chunks = vec![];
    let mut rest = &order[..];
    while let Some(&first) = rest.first() {
        let most = MAX_CHUNK_FACTOR * chunk_size.max(1);
        let fits = (budget / sizes[first].max(1)).clamp(chunk_size.max(1), most);
        let (chunk, tail) = rest.split_at(fits.min(rest.len()));
        chunks.push(chunk.to_vec());
        rest = tail;
    }
    chunks
}

/// Predictions made chunk by chunk (`size_sorted_chunks`) back in dev order.
fn in_dev_order<T>(chunks: &[Vec<usize>], predictions: Vec<T>) -> Vec<T> {
    let mut placed: Vec<(usize, T)> = chunks.iter().flatten().copied().zip(predictions).collect();
    placed.sort_by_key(|(i, _)| *i);
    placed.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_batches_cover_every_example_once_with_similar_sizes() {
        let sizes: Vec<usize> = (0..1000).map(|i| (i * 7919) % 300).collect();
        let batches = length_grouped_batches(&sizes, 16, &mut StdRng::seed_from_u64(3));
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        // Within a batch sizes are close: the spread is far below the 0..300 range.
        let spread: usize = batches
            .iter()
            .map(|b| {
                b.iter().map(|&i| sizes[i]).max().unwrap()
                    - b.iter().map(|&i| sizes[i]).min().unwrap()
            })
            .max()
            .unwrap();
        assert!(spread < 60, "spread {spread}");
        let again = length_grouped_batches(&sizes, 16, &mut StdRng::seed_from_u64(3));
        assert_eq!(batches, again);
    }

    #[test]
    fn random_batches_are_a_shuffle_cut_in_order() {
        let sizes = vec![1; 50];
        let batches = epoch_batches(&sizes, 16, Batching::Random, &mut StdRng::seed_from_u64(3));
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [16, 16, 16, 2]
        );
        let mut order: Vec<usize> = (0..50).collect();
        order.shuffle(&mut StdRng::seed_from_u64(3));
        assert_eq!(batches.concat(), order);
    }

    #[test]
    fn the_first_subset_keeps_the_file_order() {
        let (mut train, mut dev): (Vec<usize>, Vec<usize>) = ((0..10).collect(), (0..10).collect());
        take_subset(&mut train, &mut dev, Some(4), Some(3), Subset::First);
        assert_eq!((train, dev), (vec![0, 1, 2, 3], vec![0, 1, 2]));
        let mut train: Vec<usize> = (0..10).collect();
        take_subset(&mut train, &mut vec![], Some(4), None, Subset::Random);
        assert_ne!(train, vec![0, 1, 2, 3]);
    }

    #[test]
    fn sorted_chunks_round_trip_to_dev_order() {
        let sizes = vec![3, 9, 1, 9, 4];
        let chunks = size_sorted_chunks(&sizes, 2);
        // Budget 2 × 9: two of the longest, then all three short ones (3 × 4 ≤ 18).
        assert_eq!(chunks, vec![vec![1, 3], vec![4, 0, 2]]);
        let predictions: Vec<usize> = chunks.iter().flatten().map(|&i| i * 10).collect();
        assert_eq!(in_dev_order(&chunks, predictions), vec![0, 10, 20, 30, 40]);
    }
}
