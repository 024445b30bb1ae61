//! `search.json`: what a search sweep found, written beside its report. Orchestration fills it
//! from the trials' run dirs; the report reads it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    /// `successive halving (asha), eta 3` or `random`.
    pub strategy: String,
    pub trials: usize,
    /// The sampler's seed.
    pub seed: u64,
    /// The dev metric compared; None: each task's main metric.
    pub metric: Option<String>,
    /// Lower is better.
    pub minimize: bool,
    pub groups: Vec<GroupRecord>,
}

/// One combination of the grid's fixed axes and its trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// `task="sst2", method="pt2"`.
    pub name: String,
    pub task: String,
    pub method: ptv2_models::MethodKind,
    /// The dev metric its trials are compared by.
    pub metric: String,
    /// The searched settings, and whether each is drawn (and charted) on a log scale.
    pub searched: Vec<(String, bool)>,
    pub rungs: Vec<usize>,
    pub max_epochs: usize,
    pub trials: Vec<TrialRecord>,
    /// Index into `trials`, once the search is decided.
    pub best: Option<usize>,
    /// Run-epochs the trials trained, and what training every trial to the end costs.
    pub spent_epochs: usize,
    pub full_epochs: usize,
    /// Wall seconds the trials took, summed over them (all the processes that trained each).
    #[serde(default)]
    pub spent_seconds: f64,
    /// The best configuration's runs over the grid's seeds.
    pub seed_runs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub run_id: String,
    /// The drawn values as the sweep file writes them.
    pub values: Vec<(String, String)>,
    /// The searched metric at each trained epoch.
    pub curve: Vec<f64>,
    /// `ok`, `pruned`, `failed`, `diverged`, or where it stands (`at epoch 3`).
    pub state: String,
}

impl TrialRecord {
    /// Its drawn value of `key` as a number (None for a text choice).
    pub fn number(&self, key: &str) -> Option<f64> {
        let (_, text) = self.values.iter().find(|(k, _)| k == key)?;
        text.parse().ok()
    }

    /// Its best score so far (None before an epoch).
    pub fn best(&self, minimize: bool) -> Option<f64> {
        let pick = if minimize { f64::min } else { f64::max };
        self.curve
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .reduce(pick)
    }
}

/// `lr=0.00316 prompt_len=16`: drawn settings as one line.
pub fn settings_text<V: std::fmt::Display>(values: &[(String, V)]) -> String {
    let pairs: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}
