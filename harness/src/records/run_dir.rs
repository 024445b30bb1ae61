//! What a run leaves on disk, and the types of those files: the bottom layer every other module
//! may read. A run dir holds `config.json` (its settings), `metrics.json`, `status.json` (written
//! last by a sweep: the run is done), the best epoch's checkpoint and dev predictions.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use ptv2_models::ParamCounts;

use crate::records::settings::RunSettings;

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const METRICS_FILE: &str = "metrics.json";
pub const STATUS_FILE: &str = "status.json";
pub const TRAIN_ORDER_FILE: &str = "train_order.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based, as the progress lines and reports count.
    pub epoch: usize,
    pub train_loss: f64,
    pub dev: Vec<(String, f64)>,
    pub seconds: f64,
}

/// `metrics.json` of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    pub task: String,
    pub method: ptv2_models::MethodKind,
    pub model: String,
    pub seed: u64,
    pub params: ParamCounts,
    pub trainable_percent: f64,
    pub epochs: Vec<EpochRecord>,
    /// 1-based, as the progress lines and reports count.
    pub best_epoch: usize,
    pub main_metric: String,
    pub best_dev: Vec<(String, f64)>,
    pub train_examples: usize,
    pub dev_examples: usize,
    pub steps: usize,
    pub wall_seconds: f64,
    pub train_steps_per_second: f64,
    pub peak_rss_mb: f64,
    pub checkpoint_bytes: u64,
    /// Of the best epoch's checkpoint: `ptv2 eval` refuses a checkpoint that does not match.
    #[serde(default)]
    pub checkpoint_sha256: Option<String>,
    pub device: String,
    /// Dev scores of always predicting the training split's most frequent label.
    #[serde(default)]
    pub majority_dev: Option<Vec<(String, f64)>>,
    /// Label names in class order (what the predictions file's labels index), if classes.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The best dev epoch's scores on the task's labelled test split (`trained::score_test`), where
    /// it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_test: Option<Vec<(String, f64)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Diverged,
    /// A search's trial stopped at a rung (`orchestration/search.rs`); its curve so far is kept.
    Pruned,
}

impl RunStatus {
    /// Its name in status.json, tables and listings (`ok`, `failed`, `diverged`, `pruned`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Diverged => "diverged",
            Self::Pruned => "pruned",
        }
    }

    /// How a run that returned `result` ended.
    pub fn of<T>(result: &Result<T>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(err) if err.downcast_ref::<Diverged>().is_some() => Self::Diverged,
            Err(_) => Self::Failed,
        }
    }
}

/// `status.json` of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusRecord {
    pub run_id: String,
    pub status: RunStatus,
    pub error: Option<String>,
}

/// A run whose loss stopped being finite: recorded as `diverged`, not `failed`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("diverged: loss is {loss} at epoch {epoch} step {step} (try a smaller --lr)")]
pub struct Diverged {
    pub loss: f64,
    /// 1-based.
    pub epoch: usize,
    pub step: usize,
}

/// One run of a sweep: its settings and their id.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub id: String,
    pub settings: RunSettings,
}

impl PlannedRun {
    pub fn new(settings: RunSettings) -> Self {
        Self {
            id: settings.id(),
            settings,
        }
    }
}

/// A run's dir and its files.
#[derive(Debug, Clone)]
pub struct RunDir(pub PathBuf);

impl RunDir {
    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `status.json`, if the run is done.
    pub fn status(&self) -> Option<StatusRecord> {
        let text = std::fs::read_to_string(self.file(STATUS_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write_status(&self, status: &StatusRecord) -> Result<()> {
        crate::records::io::write_json(&self.file(STATUS_FILE), status)
    }

    pub fn metrics(&self) -> Result<RunMetrics> {
        let mut metrics: RunMetrics = read_json(&self.file(METRICS_FILE), "metrics file")?;
        // Older versions counted epochs from 0.
        if metrics.epochs.first().is_some_and(|e| e.epoch == 0) {
            metrics.epochs.iter_mut().for_each(|e| e.epoch += 1);
            metrics.best_epoch += 1;
        }
        Ok(metrics)
    }

    pub fn settings(&self) -> Result<RunSettings> {
        let path = self.file(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        RunSettings::from_config_json(&text, &path.display().to_string())
    }
}

/// A sweep's output dir, `reports/NAME/`, with a dir per run under `runs/`.
#[derive(Debug, Clone)]
pub struct SweepDir(pub PathBuf);

impl SweepDir {
    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn run(&self, id: &str) -> RunDir {
        RunDir(self.0.join("runs").join(id))
    }

    /// How many of `runs` have finished (a `status.json`).
    pub fn done(&self, runs: &[PlannedRun]) -> usize {
        runs.len() - self.pending(runs).len()
    }

    /// The runs without a `status.json` yet.
    pub fn pending<'a>(&self, runs: &'a [PlannedRun]) -> Vec<&'a PlannedRun> {
        runs.iter()
            .filter(|r| self.run(&r.id).status().is_none())
            .collect()
    }

    /// Rename run dirs written under an older id scheme to their settings' id now, so a sweep
    /// finished before an upgrade is not run again. Returns how many moved.
    pub fn adopt_older_runs(&self) -> Result<usize> {
        let Ok(entries) = std::fs::read_dir(self.0.join("runs")) else {
            return Ok(0);
        };
        let mut moved = 0;
        for entry in entries.flatten() {
            let old = RunDir(entry.path());
            let (Ok(settings), Some(mut status)) = (old.settings(), old.status()) else {
                continue;
            };
            let id = settings.id();
            let new = self.run(&id);
            if new.path() == old.path() || new.path().exists() {
                continue;
            }
            // Several workers may adopt at once: the one whose rename lands rewrites the files.
            if let Err(err) = std::fs::rename(old.path(), new.path()) {
                if !old.path().exists() || new.path().exists() {
                    continue;
                }
                return Err(err).with_context(|| format!("cannot rename {}", old.path().display()));
            }
            crate::records::io::write_json(&new.file(CONFIG_FILE), &settings)?;
            status.run_id = id;
            new.write_status(&status)?;
            moved += 1;
        }
        Ok(moved)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a ptv2 {what}", path.display()))
}

/// The sha256 of a file as hex, or None when it cannot be read.
pub fn sha256_of(path: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).ok()?;
    Some(format!("{:x}", Sha256::digest(&bytes)))
}

/// Peak resident memory of this process so far (VmHWM), in MB; 0 where /proc is not available.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
