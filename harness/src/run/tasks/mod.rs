//! The task registry: a task name → its files and format, how an example becomes model input,
//! its head, its metric and its dev split. One file per task family:
//!
//! - `text.rs`: the shared shape of sentence(-pair) classification, regression and multiple choice;
//! - `glue.rs`, `superglue.rs`: readers that declare GLUE (TSV) and SuperGLUE (JSONL) tasks;
//! - `ner.rs`: CoNLL-column sequence labelling (IOB1/IOB2), seqeval entity F1;
//! - `qa.rs`: SQuAD-format extractive QA (v1.1 and v2.0), windows, n-best post-processing;
//! - `parquet.rs`: Hugging Face Parquet exports, a file source any family reads from;
//! - `templates.rs`: templates and label words (experiments/templates.toml) for text tasks read
//!   through a masked-LM head.
//!
//! One registry (`registry`): each family declares its tasks in a `TASKS` table, and every task
//! reads from any `Source`: its files in the data dir, two files by path, or Parquet.

pub mod batching;
pub mod glue;
pub mod ner;
pub mod parquet;
pub mod qa;
pub mod superglue;
pub mod task;
pub mod templates;
pub mod text;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

pub use self::batching::{epoch_batches, length_grouped_batches, predict_in_chunks};
pub use self::task::{
    input_field, take_subset, Batch, DevResult, Forward, Predictor, Source, Task,
};

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

/// One line of `ptv2 tasks`: what a registered task is, where its files are, how it is scored.
pub struct TaskListing {
    pub name: &'static str,
    pub family: &'static str,
    /// Its train and dev files under the data dir (`-` for a task read only by path).
    pub files: String,
    pub metric: &'static str,
    /// Label names in class order (empty where predictions are not classes).
    pub labels: String,
}

impl TaskSpec {
    pub fn listing(&self) -> TaskListing {
        let (family, files, metric, labels) = match self {
            Self::Glue(t) => (
                "GLUE (TSV)",
                format!("{}, {}", t.train, t.dev),
                t.metric.main_name(),
                t.names.join(", "),
            ),
            Self::SuperGlue(t) => (
                "SuperGLUE (JSONL)",
                format!("superglue/{0}/train.jsonl, superglue/{0}/val.jsonl", t.dir),
                t.metric.main_name(),
                t.labels.join(", "),
            ),
            Self::Ner(t) => (
                "NER (CoNLL columns)",
                match (t.files, t.test) {
                    (Some((train, dev)), Some(test)) => format!("{train}, {dev}; test {test}"),
                    (Some((train, dev)), None) => format!("{train}, {dev}"),
                    (None, _) => "-".to_string(),
                },
                "f1 (entity, seqeval)",
                String::new(),
            ),
            Self::Qa(t) => (
                "extractive QA (SQuAD JSON)",
                format!("{}, {}", t.train.join(" or "), t.dev),
                "f1, exact_match (SQuAD)",
                String::new(),
            ),
        };
        TaskListing {
            name: self.name(),
            family,
            files,
            metric,
            labels,
        }
    }
}

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
