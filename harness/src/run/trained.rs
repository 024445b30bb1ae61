//! A finished run loaded back from its dir (`ptv2 eval`, `predict`, `serve`, `export-peft`, and
//! the test split scored after training): its settings, task, tokenizer and checkpoint.

use std::path::Path;

use anyhow::Result;
use burn::tensor::Device;

use ptv2_models::{backend, EncoderCache, Pretrained, TextEncoder, TunedModel};

use crate::records::run_dir::{sha256_of, RunDir, CHECKPOINT_FILE, METRICS_FILE};
use crate::records::settings::RunSettings;
use crate::run::setup::{
    load_prepared, method_init, pretrained_and_task, with_head, with_missing_pooler, RunEnv,
};
use crate::run::tasks::{Predictor, Task};

/// The reference's protocol where a task has a labelled test split: the best dev epoch's
/// checkpoint (chosen on dev alone) scored on test, its predictions written beside dev's
/// (`test_predictions.*`). None for tasks without one.
pub fn score_test(dir: &Path, env: &RunEnv) -> Result<Option<Vec<(String, f64)>>> {
    let task = RunDir(dir.to_path_buf()).settings()?.task;
    if crate::run::tasks::test_view(&task, &env.data_dir).is_none() {
        return Ok(None);
    }
    score_test_of(&Trained::load(dir, env)?, dir, env)
}

/// `score_test` with the run already loaded.
pub fn score_test_of(
    trained: &Trained,
    dir: &Path,
    env: &RunEnv,
) -> Result<Option<Vec<(String, f64)>>> {
    let Some(test_name) = crate::run::tasks::test_view(&trained.settings.task, &env.data_dir)
    else {
        return Ok(None);
    };
    let test_settings = RunSettings {
        task: test_name,
        ..trained.settings.clone()
    };
    let test = load_prepared(&test_settings, &env.data_dir, &trained.text)?;
    // Labels are read from the splits: the head's classes must be the same ones in the same order.
    if test.labels() != trained.task.labels() {
        anyhow::bail!(
            "{}: the test split's labels {:?} are not the dev run's {:?}",
            trained.settings.task,
            test.labels(),
            trained.task.labels()
        );
    }
    let result = test.evaluate(&trained.predictor())?;
    let file = result.predictions_file.replacen("dev_", "test_", 1);
    crate::records::io::write_atomic(
        &RunDir(dir.to_path_buf()).file(&file),
        result.predictions.as_bytes(),
    )?;
    Ok(Some(result.scores))
}

/// A finished run loaded back: its settings, task, tokenizer and the model with its checkpoint.
pub struct Trained {
    pub settings: RunSettings,
    pub task: Box<dyn Task>,
    pub text: TextEncoder,
    pub model: TunedModel,
    pub device: Device,
}

impl Trained {
    /// Load the run in `dir`: the pretrained model and task its config.json names, and its
    /// checkpoint (refused unless it is the file the run wrote).
    pub fn load(dir: &Path, env: &RunEnv) -> Result<Self> {
        Self::load_sharing(dir, env, &mut EncoderCache::default())
    }

    /// `load`, with the pretrained encoder shared through `encoders` (runs served side by side).
    pub fn load_sharing(dir: &Path, env: &RunEnv, encoders: &mut EncoderCache) -> Result<Self> {
        let run = RunDir(dir.to_path_buf());
        let settings = run.settings()?;
        let device = backend::device_by_name(&env.device)?;
        let (pretrained, task, model_dir) = pretrained_and_task(&settings, env, &device, encoders)?;
        let Pretrained {
            encoder,
            text,
            config: encoder_config,
        } = pretrained;
        let init = method_init(&settings, &encoder_config);
        let encoder = with_missing_pooler(encoder, &settings, &encoder_config);
        let saved = settings.method()?.as_saved();
        let model = TunedModel::new(encoder, &saved, &task.head(), &init, &device);
        let mut model = with_head(model, task.as_ref(), &encoder_config, &model_dir, &device)?;
        check_checkpoint(&run)?;
        model.load_checkpoint(&run.file(CHECKPOINT_FILE))?;
        Ok(Self {
            settings,
            task,
            text,
            // LoRA's factors merged: inference pays for no adapter.
            model: model.merged(),
            device,
        })
    }

    pub fn predictor(&self) -> Predictor<'_> {
        Predictor {
            model: &self.model,
            text: &self.text,
            device: &self.device,
        }
    }
}

/// Reload a run's checkpoint and score it on its dev split again.
pub fn evaluate_checkpoint(dir: &Path, env: &RunEnv) -> Result<(RunSettings, Vec<(String, f64)>)> {
    let trained = Trained::load(dir, env)?;
    let scores = trained.task.evaluate(&trained.predictor())?.scores;
    Ok((trained.settings, scores))
}

/// The checkpoint is the one the run wrote: its sha256 is the one in metrics.json (a run still in
/// progress has none to check against).
fn check_checkpoint(run: &RunDir) -> Result<()> {
    let Ok(metrics) = run.metrics() else {
        return Ok(());
    };
    let path = run.file(CHECKPOINT_FILE);
    match (&metrics.checkpoint_sha256, sha256_of(&path)) {
        (Some(recorded), Some(found)) if *recorded != found => anyhow::bail!(
            "{}: sha256 {found} is not the {recorded} that {} recorded: the file changed or is another run's",
            path.display(),
            run.file(METRICS_FILE).display()
        ),
        _ => Ok(()),
    }
}
