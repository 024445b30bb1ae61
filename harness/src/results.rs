//! A sweep's results as rows: one per run × split × metric, every run setting a column, plus what
//! the run cost (trainable params, wall time, steps/s, peak memory), its last-epoch score, the
//! majority-class level and its status. Summaries over seeds, the cost of a point, charts and the
//! report are pure functions of the finished runs' records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::runner::{read_status, RunStatus, SweepEnv};
use crate::sweep::PlannedRun;
use crate::train::{RunConfig, RunMetrics, METRICS_FILE};

/// A run of a sweep that has finished (ok, failed or diverged), with its files' contents.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: String,
    pub config: RunConfig,
    /// `setting_key(&config)`, computed once.
    pub setting: String,
    pub dir: PathBuf,
    pub status: RunStatus,
    pub error: Option<String>,
    /// `metrics.json`, for runs that finished ok.
    pub metrics: Option<RunMetrics>,
}

/// The records of every run of a sweep that has a `status.json` (pending runs have none).
pub fn collect(runs: &[PlannedRun], env: &SweepEnv) -> Result<Vec<RunRecord>> {
    let mut records = vec![];
    for run in runs {
        let dir = env.run_dir(&run.id);
        let Some(status) = read_status(&dir) else {
            continue;
        };
        let metrics = if status.status == RunStatus::Ok {
            let path = dir.join(METRICS_FILE);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a ptv2 metrics file", path.display()))?,
            )
        } else {
            None
        };
        records.push(RunRecord {
            id: run.id.clone(),
            setting: setting_key(&run.config),
            config: run.config.clone(),
            dir,
            status: status.status,
            error: status.error,
            metrics,
        });
    }
    Ok(records)
}

/// A configuration's identity: every resolved run setting but the seed, as `key=value` pairs.
/// Runs that share it are seeds of one configuration; the summary and `ptv2 check` group by it,
/// so a new run setting needs no change here.
pub fn setting_key(config: &RunConfig) -> String {
    let value = serde_json::to_value(config).expect("a run config serializes");
    let Some(fields) = value.as_object() else {
        unreachable!("a run config serializes to an object")
    };
    fields
        .iter()
        .filter(|(key, value)| key.as_str() != "seed" && !value.is_null())
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => format!("{key}={s}"),
            other => format!("{key}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One results row. Its columns (results.csv/.parquet) are its serialized fields, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub run_id: String,
    pub model: String,
    pub task: String,
    pub method: String,
    pub prompt_len: usize,
    pub reparam_hidden: Option<usize>,
    pub prefix_layers: String,
    /// The prompt (PT) or prefix (PT2) init; empty for FT.
    pub init: String,
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub max_train: Option<usize>,
    pub max_eval: Option<usize>,
    pub max_len: usize,
    pub dropout: f64,
    pub schedule: String,
    /// Every setting but the seed (`setting_key`).
    pub setting: String,
    pub status: String,
    pub split: String,
    pub metric: String,
    /// At the best dev epoch (the paper's protocol).
    pub value: Option<f64>,
    /// At the last epoch.
    pub last_value: Option<f64>,
    /// Always predicting the training split's most frequent label.
    pub majority: Option<f64>,
    /// Is this the metric that picks the best epoch?
    pub main: bool,
    /// 1-based, as the progress lines count.
    pub best_epoch: Option<usize>,
    pub trainable_params: Option<usize>,
    pub total_params: Option<usize>,
    pub trainable_percent: Option<f64>,
    pub wall_seconds: Option<f64>,
    pub steps_per_second: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub error: Option<String>,
}

fn lookup(scores: &[(String, f64)], metric: &str) -> Option<f64> {
    scores.iter().find(|(m, _)| m == metric).map(|(_, v)| *v)
}

/// The rows of finished runs: one per dev metric of an ok run, one (without a value) per failed run.
pub fn rows(records: &[RunRecord]) -> Vec<ResultRow> {
    let mut rows = vec![];
    for record in records {
        let c = &record.config;
        let (reparam_hidden, prefix_layers) = match &c.method {
            ptv2_models::Method::Pt2 {
                reparam_hidden,
                layers,
                ..
            } => (*reparam_hidden, layers.to_string()),
            _ => (None, String::new()),
        };
        let base = ResultRow {
            run_id: record.id.clone(),
            model: c.model.clone(),
            task: c.task.clone(),
            method: c.method.name().into(),
            prompt_len: c.method.prompt_len(),
            reparam_hidden,
            prefix_layers,
            init: match c.method {
                ptv2_models::Method::Ft => String::new(),
                _ => c.method.init().to_string(),
            },
            lr: c.lr,
            epochs: c.epochs,
            batch_size: c.batch_size,
            seed: c.seed,
            max_train: c.max_train,
            max_eval: c.max_eval,
            max_len: c.max_len,
            dropout: c.dropout,
            schedule: c.schedule.to_string(),
            setting: record.setting.clone(),
            status: format!("{:?}", record.status).to_lowercase(),
            split: "dev".into(),
            metric: String::new(),
            value: None,
            last_value: None,
            majority: None,
            main: false,
            best_epoch: None,
            trainable_params: None,
            total_params: None,
            trainable_percent: None,
            wall_seconds: None,
            steps_per_second: None,
            peak_rss_mb: None,
            error: record.error.clone(),
        };
        let Some(m) = &record.metrics else {
            rows.push(base);
            continue;
        };
        let last = m.epochs.last().map(|e| e.dev.as_slice()).unwrap_or(&[]);
        for (i, (metric, value)) in m.best_dev.iter().enumerate() {
            rows.push(ResultRow {
                metric: metric.clone(),
                value: Some(*value),
                last_value: lookup(last, metric),
                majority: m.majority_dev.as_deref().and_then(|s| lookup(s, metric)),
                main: i == 0,
                best_epoch: Some(m.best_epoch + 1),
                trainable_params: Some(m.params.trainable),
                total_params: Some(m.params.total),
                trainable_percent: Some(m.trainable_percent),
                wall_seconds: Some(m.wall_seconds),
                steps_per_second: Some(m.train_steps_per_second),
                peak_rss_mb: Some(m.peak_rss_mb),
                ..base.clone()
            });
        }
    }
    rows
}

/// One configuration's main dev score over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub model: String,
    pub task: String,
    pub method: String,
    pub prompt_len: usize,
    pub prefix_layers: String,
    pub reparam_hidden: Option<usize>,
    pub init: String,
    pub lr: f64,
    pub epochs: usize,
    pub metric: String,
    /// Best-epoch score: mean and sample standard deviation (n − 1; 0 for one seed).
    pub mean: f64,
    pub std: f64,
    pub n: usize,
    /// Last-epoch score, mean and std over the same seeds.
    pub last_mean: f64,
    pub last_std: f64,
    pub majority: Option<f64>,
    pub trainable_params: usize,
    pub trainable_percent: f64,
    pub total_params: usize,
    /// Mean wall seconds of a run.
    pub wall_seconds: f64,
    /// The cost of a point (`cost_of_a_point`): the score that is within one point of FT's best
    /// mean (None without FT runs); mean epochs and wall seconds to reach it, over the seeds that
    /// got there; how many did.
    pub ft_target: Option<f64>,
    pub epochs_to_ft: Option<f64>,
    pub seconds_to_ft: Option<f64>,
    pub reached_ft: usize,
    /// Every setting but the seed: the configuration's identity (`setting_key`).
    pub setting: String,
    /// The learning curve: main dev score per epoch, mean over seeds (`learning_curves`; drawn,
    /// not tabled).
    #[serde(skip)]
    pub curve: Vec<f64>,
}

/// Mean and sample standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

/// Mean, std and count of each configuration's main dev metric over seeds.
pub fn summarize(rows: &[ResultRow]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(String, String), Vec<&ResultRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.main && r.value.is_some()) {
        groups
            .entry((r.setting.clone(), r.metric.clone()))
            .or_default()
            .push(r);
    }
    let mut summary: Vec<SummaryRow> = groups
        .into_values()
        .map(|group| {
            let of = |f: fn(&ResultRow) -> Option<f64>| -> Vec<f64> {
                group.iter().filter_map(|r| f(r)).collect()
            };
            let (mean, std) = mean_std(&of(|r| r.value));
            let (last_mean, last_std) = mean_std(&of(|r| r.last_value));
            let first = group[0];
            SummaryRow {
                model: first.model.clone(),
                task: first.task.clone(),
                method: first.method.clone(),
                prompt_len: first.prompt_len,
                prefix_layers: first.prefix_layers.clone(),
                reparam_hidden: first.reparam_hidden,
                init: first.init.clone(),
                lr: first.lr,
                epochs: first.epochs,
                metric: first.metric.clone(),
                mean,
                std,
                n: group.len(),
                last_mean,
                last_std,
                majority: first.majority,
                trainable_params: first.trainable_params.unwrap_or(0),
                trainable_percent: first.trainable_percent.unwrap_or(0.0),
                total_params: first.total_params.unwrap_or(0),
                wall_seconds: mean_std(&of(|r| r.wall_seconds)).0,
                ft_target: None,
                epochs_to_ft: None,
                seconds_to_ft: None,
                reached_ft: 0,
                setting: first.setting.clone(),
                curve: vec![],
            }
        })
        .collect();
    summary.sort_by(|a, b| {
        (&a.model, &a.task, method_rank(&a.method), &a.setting).cmp(&(
            &b.model,
            &b.task,
            method_rank(&b.method),
            &b.setting,
        ))
    });
    summary
}

/// FT, PT, PT2 in the paper's order; other methods after them.
pub fn method_rank(method: &str) -> usize {
    ["ft", "pt", "pt2"]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(3)
}

/// The best configuration (highest mean) of a method on a task of a model.
pub fn best<'a>(
    summary: &'a [SummaryRow],
    model: &str,
    task: &str,
    method: &str,
) -> Option<&'a SummaryRow> {
    summary
        .iter()
        .filter(|r| r.model == model && r.task == task && r.method == method)
        .max_by(|a, b| a.mean.total_cmp(&b.mean))
}

/// The finished-ok runs of a summary row's configuration (its seeds).
pub fn runs_of<'a>(
    records: &'a [RunRecord],
    s: &SummaryRow,
) -> impl Iterator<Item = (&'a RunRecord, &'a RunMetrics)> {
    let setting = s.setting.clone();
    records
        .iter()
        .filter(move |r| r.setting == setting)
        .filter_map(|r| Some((r, r.metrics.as_ref()?)))
}

/// What a point costs: for every configuration, the epochs and wall seconds each seed needed to
/// come within one point (0.01) of FT's best mean on the same model and task, from the per-epoch
/// dev curves in metrics.json. Filled into the summary rows (None where no seed got there or the
/// task has no FT run).
pub fn cost_of_a_point(summary: &mut [SummaryRow], records: &[RunRecord]) {
    let targets: Vec<Option<f64>> = summary
        .iter()
        .map(|s| best(summary, &s.model, &s.task, "ft").map(|ft| ft.mean - 0.01))
        .collect();
    for (s, target) in summary.iter_mut().zip(targets) {
        let Some(target) = target else { continue };
        s.ft_target = Some(target);
        let reached: Vec<(f64, f64)> = runs_of(records, s)
            .filter_map(|(_, m)| epochs_to_reach(m, target))
            .collect();
        s.reached_ft = reached.len();
        if !reached.is_empty() {
            let epochs: Vec<f64> = reached.iter().map(|r| r.0).collect();
            let seconds: Vec<f64> = reached.iter().map(|r| r.1).collect();
            s.epochs_to_ft = Some(mean_std(&epochs).0);
            s.seconds_to_ft = Some(mean_std(&seconds).0);
        }
    }
}

/// Fill each configuration's learning curve from its runs' per-epoch dev scores: the mean over
/// the seeds that have each epoch.
pub fn learning_curves(summary: &mut [SummaryRow], records: &[RunRecord]) {
    for s in summary.iter_mut() {
        let curves: Vec<Vec<f64>> = runs_of(records, s)
            .map(|(_, m)| {
                m.epochs
                    .iter()
                    .filter_map(|e| e.dev.first().map(|d| d.1))
                    .collect()
            })
            .collect();
        let epochs = curves.iter().map(Vec::len).max().unwrap_or(0);
        s.curve = (0..epochs)
            .map(|i| {
                mean_std(
                    &curves
                        .iter()
                        .filter_map(|c| c.get(i).copied())
                        .collect::<Vec<_>>(),
                )
                .0
            })
            .collect();
    }
}

/// The first epoch (1-based) whose main dev score reaches `target`, and the wall seconds of the
/// epochs up to and including it.
pub fn epochs_to_reach(metrics: &RunMetrics, target: f64) -> Option<(f64, f64)> {
    let mut seconds = 0.0;
    for (i, epoch) in metrics.epochs.iter().enumerate() {
        seconds += epoch.seconds;
        if epoch.dev.first().is_some_and(|(_, v)| *v >= target) {
            return Some(((i + 1) as f64, seconds));
        }
    }
    None
}

/// The first markdown cells of a summary row: model, task, method, P, init, lr, epochs.
pub fn config_cells(s: &SummaryRow) -> String {
    let p = if s.method == "ft" {
        "–".to_string()
    } else {
        s.prompt_len.to_string()
    };
    let init = if s.init.is_empty() { "–" } else { &s.init };
    format!(
        "| {} | {} | {} | {p} | {init} | {} | {} |",
        s.model, s.task, s.method, s.lr, s.epochs
    )
}

fn cell(value: Option<f64>, digits: usize) -> String {
    value.map_or("–".into(), |v| format!("{v:.digits$}"))
}

pub fn summary_markdown(summary: &[SummaryRow]) -> String {
    let mut out = String::from("| model | task | method | P | init | lr | epochs | metric | best epoch: mean ± std | last epoch: mean ± std | n | majority | trainable | % | s/run |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in summary {
        out.push_str(&format!(
            "{} {} | {:.4} ± {:.4} | {:.4} ± {:.4} | {} | {} | {} | {:.3} | {:.0} |\n",
            config_cells(s),
            s.metric,
            s.mean,
            s.std,
            s.last_mean,
            s.last_std,
            s.n,
            cell(s.majority, 4),
            s.trainable_params,
            s.trainable_percent,
            s.wall_seconds
        ));
    }
    out
}

/// Write results.parquet/.csv, summary.parquet/.csv and summary.md into the sweep dir.
pub fn write_tables(
    records: &[RunRecord],
    dir: &Path,
) -> Result<(Vec<ResultRow>, Vec<SummaryRow>)> {
    let rows = rows(records);
    let mut summary = summarize(&rows);
    cost_of_a_point(&mut summary, records);
    learning_curves(&mut summary, records);
    crate::table::write_frame(&mut crate::table::frame(&rows)?, &dir.join("results"))?;
    crate::table::write_frame(&mut crate::table::frame(&summary)?, &dir.join("summary"))?;
    crate::io::write_atomic(
        &dir.join("summary.md"),
        summary_markdown(&summary).as_bytes(),
    )?;
    Ok((rows, summary))
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A finished run's main-metric row, for tests.
    pub(crate) fn row(task: &str, method: &str, p: usize, seed: u64, value: f64) -> ResultRow {
        let setting = format!("task={task} method={method} prompt_len={p}");
        ResultRow {
            run_id: format!("{task}{method}{p}{seed}"),
            model: "m".into(),
            task: task.into(),
            method: method.into(),
            prompt_len: p,
            reparam_hidden: None,
            prefix_layers: if method == "pt2" {
                "all".into()
            } else {
                String::new()
            },
            init: String::new(),
            lr: 0.01,
            epochs: 1,
            batch_size: 8,
            seed,
            max_train: None,
            max_eval: None,
            max_len: 128,
            dropout: 0.1,
            schedule: "linear".into(),
            setting,
            status: "ok".into(),
            split: "dev".into(),
            metric: "accuracy".into(),
            value: Some(value),
            last_value: Some(value),
            majority: Some(0.5),
            main: true,
            best_epoch: Some(1),
            trainable_params: Some(100),
            total_params: Some(1000),
            trainable_percent: Some(10.0),
            wall_seconds: Some(1.0),
            steps_per_second: Some(1.0),
            peak_rss_mb: Some(1.0),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::row;
    use super::*;

    #[test]
    fn summary_averages_over_seeds_only() {
        let mut other_dropout = row("rte", "pt2", 8, 3, 0.9);
        other_dropout.setting.push_str(" dropout=0.2");
        let rows = vec![
            row("rte", "pt2", 8, 1, 0.5),
            row("rte", "pt2", 8, 2, 0.7),
            row("rte", "ft", 0, 1, 0.6),
            other_dropout,
        ];
        let s = summarize(&rows);
        assert_eq!(s.len(), 3, "a run with another dropout is not a seed");
        let pt2 = s.iter().find(|s| s.method == "pt2" && s.n == 2).unwrap();
        assert!((pt2.mean - 0.6).abs() < 1e-12 && (pt2.std - 0.1414213562).abs() < 1e-9);
    }

    /// A synthetic metrics.json with these per-epoch dev accuracies, 10 s an epoch.
    fn metrics_with_curve(method: &str, curve: &[f64]) -> RunMetrics {
        let epochs: Vec<serde_json::Value> = curve
            .iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"epoch": i, "train_loss": 0.5, "dev": [["accuracy", v]], "seconds": 10.0}))
            .collect();
        let best = curve.iter().copied().fold(f64::MIN, f64::max);
        let best_epoch = curve.iter().position(|v| *v == best).unwrap();
        serde_json::from_value(serde_json::json!({
            "task": "sst2", "method": method, "model": "m", "seed": 1,
            "params": {"trainable": 10, "total": 100}, "trainable_percent": 10.0,
            "epochs": epochs, "best_epoch": best_epoch, "main_metric": "accuracy",
            "best_dev": [["accuracy", best]], "train_examples": 8, "dev_examples": 8,
            "steps": 4, "wall_seconds": 10.0 * curve.len() as f64, "train_steps_per_second": 1.0,
            "peak_rss_mb": 1.0, "checkpoint_bytes": 0, "device": "cpu",
            "majority_dev": [["accuracy", 0.5]], "labels": ["0", "1"]
        }))
        .unwrap()
    }

    fn record(method: &str, seed: u64, curve: &[f64]) -> RunRecord {
        let toml = format!("[fixed]\nmodel = \"m\"\ntask = \"sst2\"\nmethod = \"{method}\"\nlr = 0.01\nepochs = {}\nbatch_size = 8\nseed = {seed}\n", curve.len());
        let run = crate::sweep::expand(&toml, "t.toml").unwrap().remove(0);
        RunRecord {
            id: run.id,
            setting: setting_key(&run.config),
            config: run.config,
            dir: PathBuf::new(),
            status: RunStatus::Ok,
            error: None,
            metrics: Some(metrics_with_curve(method, curve)),
        }
    }

    #[test]
    fn the_cost_of_a_point_reads_the_epoch_curves() {
        let records = vec![
            record("ft", 1, &[0.70, 0.80, 0.79]),
            record("ft", 2, &[0.75, 0.82, 0.81]),
            // FT's best mean is 0.81: within one point means ≥ 0.80.
            record("pt2", 1, &[0.60, 0.79, 0.80, 0.85]),
            record("pt2", 2, &[0.60, 0.81, 0.70, 0.70]),
            record("pt", 1, &[0.50, 0.55, 0.60, 0.65]),
        ];
        let mut summary = summarize(&rows(&records));
        cost_of_a_point(&mut summary, &records);
        let of = |m: &str| summary.iter().find(|s| s.method == m).unwrap();
        let (ft, pt2, pt) = (of("ft"), of("pt2"), of("pt"));
        assert!((ft.mean - 0.81).abs() < 1e-12);
        assert_eq!((ft.reached_ft, ft.epochs_to_ft), (2, Some(2.0)));
        // Seed 1 gets there at epoch 3 (30 s), seed 2 at epoch 2 (20 s).
        assert_eq!(pt2.reached_ft, 2);
        assert_eq!(pt2.epochs_to_ft, Some(2.5));
        assert_eq!(pt2.seconds_to_ft, Some(25.0));
        assert_eq!((pt.reached_ft, pt.epochs_to_ft), (0, None));
        // The last epoch beside the best: PT2 ends at 0.85 and 0.70.
        assert!((pt2.last_mean - 0.775).abs() < 1e-12 && (pt2.mean - 0.83).abs() < 1e-12);
        assert_eq!(pt2.majority, Some(0.5));
        learning_curves(&mut summary, &records);
        let of = |m: &str| summary.iter().find(|s| s.method == m).unwrap();
        let curve = &of("pt2").curve;
        assert_eq!(curve.len(), 4);
        for (got, want) in curve.iter().zip([0.60, 0.80, 0.75, 0.775]) {
            assert!((got - want).abs() < 1e-12, "{curve:?}");
        }
        assert_eq!(of("ft").curve.len(), 3);
    }

    #[test]
    fn the_setting_key_is_every_setting_but_the_seed() {
        let runs = crate::sweep::expand(
            "[fixed]\nmodel = \"m\"\ntask = \"sst2\"\nlr = 0.01\nepochs = 2\nbatch_size = 8\n[grid]\nmethod = [\"pt2\"]\nseed = [1, 2]\ndropout = [0.1, 0.2]\n",
            "t.toml",
        )
        .unwrap();
        let keys: Vec<String> = runs.iter().map(|r| setting_key(&r.config)).collect();
        assert_eq!(keys.len(), 4);
        assert_eq!(keys[0], keys[2], "seeds 1 and 2, dropout 0.1");
        assert_ne!(keys[0], keys[1], "dropout 0.1 vs 0.2");
        assert!(keys[0].contains("dropout=0.1") && !keys[0].contains("seed"));
    }
}
