//! Resuming a run inside itself. At the end of every epoch but the last, the run dir's `resume/`
//! gets what the run needs to go on: the trainable weights with their parameter ids (burnpack),
//! AdamW's moments (keyed by those ids), and `state.json` — the epoch records, the best epoch,
//! the step (the schedule's position) and how many dropout masks were drawn. The batch order and
//! burn's generator are not stored but replayed: the batch shuffles are redrawn from the seed
//! epoch by epoch, and the generator is advanced by the recorded number of mask draws, so a
//! resumed run ends bitwise where an uninterrupted one does.
//!
//! `state.json` is written last and names its epoch's files: a crash while saving leaves the
//! previous epoch's state whole. The dir goes when the run finishes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::{Deserialize, Serialize};

use ptv2_models::TunedModel;

use crate::records::run_dir::{EpochRecord, RunDir};
use crate::records::settings::RunSettings;

const STATE_FILE: &str = "state.json";

/// What a run has done so far: the training loop's own record, and what `resume/state.json`
/// stores of it (the same struct).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    pub step: usize,
    pub train_seconds: f64,
    /// Wall seconds of the run, over every process that worked on it.
    pub wall_seconds: f64,
    pub epochs: Vec<EpochRecord>,
    /// The best epoch so far (0-based index) and its main dev score.
    pub best: Option<(usize, f64)>,
    /// Dropout masks drawn from burn's generator since the model was built.
    pub dropout_draws: u64,
}

impl Progress {
    pub fn epochs_done(&self) -> usize {
        self.epochs.len()
    }
}

/// `resume/state.json`: the progress and the run it belongs to (other settings in the same dir
/// start over).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumeState {
    pub settings: RunSettings,
    #[serde(flatten)]
    pub progress: Progress,
}

fn dir_of(run: &RunDir) -> PathBuf {
    run.file("resume")
}

fn model_file(run: &RunDir, epoch: usize) -> PathBuf {
    dir_of(run).join(format!("model-{epoch}.bpk"))
}

fn optimizer_file(run: &RunDir, epoch: usize) -> PathBuf {
    dir_of(run).join(format!("optimizer-{epoch}.bpk"))
}

/// What the model trains (`TunedModel::trained_patterns`, the checkpoint's own list).
fn trainable(store: BurnpackStore, model: &TunedModel) -> BurnpackStore {
    match model.trained_patterns() {
        None => store,
        Some(patterns) => patterns.into_iter().fold(store, |s, p| s.with_regex(p)),
    }
}

/// Save the state after `state.progress.epochs_done()` epochs.
pub fn save(
    run: &RunDir,
    state: &ResumeState,
    model: &TunedModel,
    optimizer: &ModuleOptimizer,
) -> Result<()> {
    let epoch = state.progress.epochs_done();
    std::fs::create_dir_all(dir_of(run))
        .with_context(|| format!("cannot create {}", dir_of(run).display()))?;
    let untracked = model.untracked_trainables();
    if let Some(first) = untracked.first() {
        anyhow::bail!(
            "{} trainable tensors (e.g. {first}) are outside what method {} says it trains: they would not be saved",
            untracked.len(),
            state.settings.tuning.method
        );
    }
    let path = model_file(run, epoch);
    let mut store = trainable(BurnpackStore::from_file(&path), model).overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    let path = optimizer_file(run, epoch);
    let _ = std::fs::remove_file(&path);
    optimizer
        .save(&path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    crate::records::io::write_json(&dir_of(run).join(STATE_FILE), state)?;
    if epoch > 0 {
        let _ = std::fs::remove_file(model_file(run, epoch - 1));
        let _ = std::fs::remove_file(optimizer_file(run, epoch - 1));
    }
    Ok(())
}

/// The saved state of this run, if there is one for these settings.
pub fn load(run: &RunDir, settings: &RunSettings) -> Result<Option<ResumeState>> {
    let path = dir_of(run).join(STATE_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let state: ResumeState = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a ptv2 resume state", path.display()))?;
    Ok((state.settings == *settings).then_some(state))
}

/// Put the saved weights (with their parameter ids) into `model` and the moments into a new
/// optimizer.
pub fn restore(
    run: &RunDir,
    state: &ResumeState,
    mut model: TunedModel,
    optimizer: ModuleOptimizer,
) -> Result<(TunedModel, ModuleOptimizer)> {
    let path = model_file(run, state.progress.epochs_done());
    let store = BurnpackStore::from_file(&path).allow_partial(true);
    let mut store = trainable(store, &model);
    let result = model
        .load_from(&mut store)
        .map_err(|e| cannot_resume(&path, &e.to_string()))?;
    if let Some(error) = result.errors.first() {
        return Err(cannot_resume(&path, &error.to_string()));
    }
    // Every tensor the run trains must come back: one left at its init would go on from there.
    let trains = model.trained_matcher();
    let missing: Vec<&String> = result
        .missing
        .iter()
        .map(|(path, _)| path)
        .filter(|path| trains(path))
        .collect();
    if let Some(first) = missing.first() {
        let why = format!(
            "no {first} in it ({} of the run's trained tensors missing)",
            missing.len()
        );
        return Err(cannot_resume(&path, &why));
    }
    if result.applied.is_empty() {
        return Err(cannot_resume(&path, "no weights in it"));
    }
    let path = optimizer_file(run, state.progress.epochs_done());
    let optimizer = optimizer
        .load(&path)
        .map_err(|e| cannot_resume(&path, &e.to_string()))?;
    Ok((model, optimizer))
}

fn cannot_resume(path: &std::path::Path, why: &str) -> anyhow::Error {
    let dir = path.parent().unwrap_or(path).display();
    anyhow::anyhow!(
        "{}: cannot resume from it: {why} (remove {dir} to start the run over)",
        path.display()
    )
}

/// Drop the saved state (the run finished, or starts over).
pub fn clear(run: &RunDir) {
    let _ = std::fs::remove_dir_all(dir_of(run));
}
