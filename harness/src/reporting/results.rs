//! A sweep's results as rows: one per run × split × metric, every run setting a column, plus what
//! the run cost (trainable params, wall time, steps/s, peak memory), its last-epoch score, the
//! majority-class level and its status. Summaries over seeds, the cost of a point, charts and the
//! report are pure functions of the finished runs' records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use ptv2_models::MethodKind;
use serde::Serialize;

use crate::records::run_dir::{PlannedRun, RunMetrics, RunStatus, SweepDir};
use crate::records::settings::RunSettings;

/// A run of a sweep that has finished (ok, failed or diverged), with its files' contents.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: String,
    pub settings: RunSettings,
    /// `settings.key()`, computed once: every setting but the seed.
    pub setting: String,
    pub dir: PathBuf,
    pub status: RunStatus,
    pub error: Option<String>,
    /// `metrics.json`, for runs that finished ok.
    pub metrics: Option<RunMetrics>,
}

/// The records of every run of a sweep that has a `status.json` (pending runs have none).
pub fn collect(runs: &[PlannedRun], sweep: &SweepDir) -> Result<Vec<RunRecord>> {
    let mut records = vec![];
    for run in runs {
        let dir = sweep.run(&run.id);
        let Some(status) = dir.status() else {
            continue;
        };
        let metrics = match status.status {
            RunStatus::Ok => Some(dir.metrics()?),
            _ => None,
        };
        records.push(RunRecord {
            id: run.id.clone(),
            setting: run.settings.key(),
            settings: run.settings.clone(),
            dir: dir.path().to_path_buf(),
            status: status.status,
            error: status.error,
            metrics,
        });
    }
    Ok(records)
}

/// One results row. Its columns (results.csv/.parquet) are its serialized fields, in order: the
/// run's id, every run setting, then what it scored and cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    pub run_id: String,
    #[serde(flatten)]
    pub settings: RunSettings,
    /// Every setting but the seed (`RunSettings::key`).
    pub setting: String,
    pub status: String,
    pub split: String,
    pub metric: String,
    /// At the best dev epoch (the paper's protocol).
    pub value: Option<f64>,
    /// At the last epoch.
    pub last_value: Option<f64>,
    /// On the task's labelled test split, at the best dev epoch (the reference's protocol).
    pub test_value: Option<f64>,
    /// Always predicting the training split's most frequent label.
    pub majority: Option<f64>,
    /// Is this the metric that picks the best epoch?
    pub main: bool,
    /// 1-based, as everywhere.
    pub best_epoch: Option<usize>,
    pub trainable_params: Option<usize>,
    pub total_params: Option<usize>,
    pub trainable_percent: Option<f64>,
    /// The run's checkpoint: what a task costs to keep (FT the whole model, PT its prompts, a
    /// zero-shot prompt nothing).
    pub checkpoint_bytes: Option<u64>,
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
        let base = ResultRow {
            run_id: record.id.clone(),
            settings: record.settings.clone(),
            setting: record.setting.clone(),
            status: record.status.name().to_string(),
            split: "dev".into(),
            metric: String::new(),
            value: None,
            last_value: None,
            test_value: None,
            majority: None,
            main: false,
            best_epoch: None,
            trainable_params: None,
            total_params: None,
            trainable_percent: None,
            checkpoint_bytes: None,
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
                test_value: m.best_test.as_deref().and_then(|s| lookup(s, metric)),
                majority: m.majority_dev.as_deref().and_then(|s| lookup(s, metric)),
                main: i == 0,
                best_epoch: Some(m.best_epoch),
                trainable_params: Some(m.params.trainable),
                total_params: Some(m.params.total),
                trainable_percent: Some(m.trainable_percent),
                checkpoint_bytes: Some(m.checkpoint_bytes),
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
    /// The configuration's settings (its first run's; all but the seed are shared). Its columns
    /// are `configuration`.
    #[serde(skip)]
    pub settings: RunSettings,
    /// Every setting but the seed, a column each.
    #[serde(flatten)]
    pub configuration: serde_json::Map<String, serde_json::Value>,
    pub metric: String,
    /// Best-epoch score: mean and sample standard deviation (n − 1; 0 for one seed).
    pub mean: f64,
    pub std: f64,
    pub n: usize,
    /// Last-epoch score, mean and std over the same seeds.
    pub last_mean: f64,
    pub last_std: f64,
    /// Test score at the best dev epoch, mean and std over the seeds that have one (tasks with a
    /// labelled test split).
    pub test_mean: Option<f64>,
    pub test_std: Option<f64>,
    pub majority: Option<f64>,
    pub trainable_params: usize,
    pub trainable_percent: f64,
    pub total_params: usize,
    /// Storage per task: the checkpoint's bytes (its first run's; seeds keep the same tensors).
    pub checkpoint_bytes: u64,
    /// Mean wall seconds of a run.
    pub wall_seconds: f64,
    /// The cost of a point (`cost_of_a_point`): the score that is within one point of FT's best
    /// mean (None without FT runs); mean epochs and wall seconds to reach it, over the seeds that
    /// got there; how many did.
    pub ft_target: Option<f64>,
    pub epochs_to_ft: Option<f64>,
    pub seconds_to_ft: Option<f64>,
    pub reached_ft: usize,
    /// Every setting but the seed: the configuration's identity (`RunSettings::key`).
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

/// One configuration's row: its seeds' mean and std, best and last epoch, and test split.
fn summary_row(group: &[&ResultRow]) -> SummaryRow {
    let of = |f: fn(&ResultRow) -> Option<f64>| -> Vec<f64> {
        group.iter().filter_map(|r| f(r)).collect()
    };
    let (mean, std) = mean_std(&of(|r| r.value));
    let (last_mean, last_std) = mean_std(&of(|r| r.last_value));
    let tests = of(|r| r.test_value);
    let (test_mean, test_std) = match tests.is_empty() {
        true => (None, None),
        false => {
            let (mean, std) = mean_std(&tests);
            (Some(mean), Some(std))
        }
    };
    let first = group[0];
    SummaryRow {
        settings: first.settings.clone(),
        configuration: first.settings.configuration(),
        metric: first.metric.clone(),
        mean,
        std,
        n: group.len(),
        last_mean,
        last_std,
        test_mean,
        test_std,
        majority: first.majority,
        trainable_params: first.trainable_params.unwrap_or(0),
        trainable_percent: first.trainable_percent.unwrap_or(0.0),
        total_params: first.total_params.unwrap_or(0),
        checkpoint_bytes: first.checkpoint_bytes.unwrap_or(0),
        wall_seconds: mean_std(&of(|r| r.wall_seconds)).0,
        ft_target: None,
        epochs_to_ft: None,
        seconds_to_ft: None,
        reached_ft: 0,
        setting: first.setting.clone(),
        curve: vec![],
    }
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
    let mut summary: Vec<SummaryRow> = groups.into_values().map(|g| summary_row(&g)).collect();
    summary.sort_by(|a, b| {
        let (a_, b_) = (&a.settings, &b.settings);
        (&a_.model, &a_.task, a_.tuning.method, &a.setting).cmp(&(
            &b_.model,
            &b_.task,
            b_.tuning.method,
            &b.setting,
        ))
    });
    summary
}

/// The best configuration (highest mean) of a method on a task of a model.
pub fn best<'a>(
    summary: &'a [SummaryRow],
    model: &str,
    task: &str,
    method: MethodKind,
) -> Option<&'a SummaryRow> {
    summary
        .iter()
        .filter(|r| {
            let s = &r.settings;
            s.model == model && s.task == task && s.tuning.method == method
        })
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
        .map(|s| {
            let s = &s.settings;
            best(summary, &s.model, &s.task, MethodKind::Ft).map(|ft| ft.mean - 0.01)
        })
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
pub fn config_cells(row: &SummaryRow) -> String {
    let s = &row.settings;
    let p = if s.tuning.method.has_prompts() {
        s.tuning.prompt_len.to_string()
    } else {
        "–".to_string()
    };
    let init = s.init();
    let init = if init.is_empty() { "–" } else { &init };
    // The method's own options, and settings config.json writes only away from their defaults
    // (a PyTorch replay, random batches, …), go beside the method, so that such rows are told
    // apart.
    let mut method = s.tuning.method.to_string();
    let details = s.method().map(|m| m.details()).unwrap_or_default();
    if !details.is_empty() {
        method.push_str(&format!(" {details}"));
    }
    for (key, value) in s
        .away_from_default()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("lora_"))
    {
        method.push_str(&format!(", {key} {value}"));
    }
    format!(
        "| {} | {} | {method} | {p} | {init} | {} | {} |",
        s.model, s.task, s.lr, s.epochs
    )
}

fn cell(value: Option<f64>, digits: usize) -> String {
    value.map_or("–".into(), |v| format!("{v:.digits$}"))
}

pub fn summary_markdown(summary: &[SummaryRow]) -> String {
    let mut out = String::from("| model | task | method | P | init | lr | epochs | metric | best epoch: mean ± std | last epoch: mean ± std | test at best dev | n | majority | trainable | % | checkpoint bytes | s/run |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in summary {
        let test = match (s.test_mean, s.test_std) {
            (Some(mean), Some(std)) => format!("{mean:.4} ± {std:.4}"),
            _ => "–".into(),
        };
        out.push_str(&format!(
            "{} {} | {:.4} ± {:.4} | {:.4} ± {:.4} | {test} | {} | {} | {} | {:.3} | {} | {:.0} |\n",
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
            s.checkpoint_bytes,
            s.wall_seconds
        ));
    }
    out
}

/// Write results.parquet/.csv, summary.parquet/.csv and summary.md into the sweep dir.
/// Rows as JSON objects with the settings config.json leaves out at their defaults written in,
/// so that a `framework` column says `ptv2` rather than nothing.
fn with_omitted_settings<T: Serialize>(rows: &[T]) -> Result<Vec<serde_json::Value>> {
    rows.iter()
        .map(|row| {
            let mut value = serde_json::to_value(row)?;
            if let Some(fields) = value.as_object_mut() {
                RunSettings::fill_omitted(fields);
            }
            Ok(value)
        })
        .collect()
}

pub fn write_tables(
    records: &[RunRecord],
    dir: &Path,
) -> Result<(Vec<ResultRow>, Vec<SummaryRow>)> {
    let rows = rows(records);
    let mut summary = summarize(&rows);
    cost_of_a_point(&mut summary, records);
    learning_curves(&mut summary, records);
    let mut results = crate::reporting::table::frame(&with_omitted_settings(&rows)?)?;
    crate::reporting::table::write_frame(&mut results, &dir.join("results"))?;
    let mut summary_table = crate::reporting::table::frame(&with_omitted_settings(&summary)?)?;
    crate::reporting::table::write_frame(&mut summary_table, &dir.join("summary"))?;
    crate::records::io::write_atomic(
        &dir.join("summary.md"),
        summary_markdown(&summary).as_bytes(),
    )?;
    Ok((rows, summary))
}

/// One line per run: its main dev score, or its status.
pub fn print_summary(dir: &SweepDir, runs: &[PlannedRun]) {
    for run in runs {
        let run_dir = dir.run(&run.id);
        let s = &run.settings;
        let outcome = match run_dir.status() {
            None => "pending".to_string(),
            Some(st) if st.status != RunStatus::Ok => {
                format!("{:?}: {}", st.status, st.error.unwrap_or_default())
            }
            Some(_) => run_dir.metrics().map_or("no metrics.json".into(), |m| {
                format!("{} {:.4}", m.best_dev[0].0, m.best_dev[0].1)
            }),
        };
        println!(
            "{}  {:<8} {:<4} P={:<3} seed={:<3} {outcome}",
            run.id, s.task, s.tuning.method, s.tuning.prompt_len, s.seed
        );
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A finished run's main-metric row, for tests.
    pub(crate) fn row(task: &str, method: &str, p: usize, seed: u64, value: f64) -> ResultRow {
        let values = [
            ("model", "m".to_string()),
            ("task", task.into()),
            ("method", method.into()),
            ("prompt_len", p.to_string()),
            ("lr", "0.01".into()),
            ("epochs", "1".into()),
            ("batch_size", "8".into()),
            ("seed", seed.to_string()),
        ];
        let settings = RunSettings::from_values(&values, "test").unwrap();
        ResultRow {
            run_id: settings.id(),
            setting: settings.key(),
            settings,
            status: "ok".into(),
            split: "dev".into(),
            metric: "accuracy".into(),
            value: Some(value),
            last_value: Some(value),
            test_value: None,
            majority: Some(0.5),
            main: true,
            best_epoch: Some(1),
            trainable_params: Some(100),
            total_params: Some(1000),
            trainable_percent: Some(10.0),
            checkpoint_bytes: Some(0),
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
        let pt2 = s
            .iter()
            .find(|s| s.settings.tuning.method == MethodKind::Pt2 && s.n == 2)
            .unwrap();
        assert!((pt2.mean - 0.6).abs() < 1e-12 && (pt2.std - 0.1414213562).abs() < 1e-9);
    }

    /// A synthetic metrics.json with these per-epoch dev accuracies, 10 s an epoch.
    fn metrics_with_curve(method: &str, curve: &[f64]) -> RunMetrics {
        let epochs: Vec<serde_json::Value> = curve
            .iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"epoch": i + 1, "train_loss": 0.5, "dev": [["accuracy", v]], "seconds": 10.0}))
            .collect();
        let best = curve.iter().copied().fold(f64::MIN, f64::max);
        let best_epoch = curve.iter().position(|v| *v == best).unwrap() + 1;
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
        let run = crate::orchestration::sweep::expand(&toml, "t.toml")
            .unwrap()
            .remove(0);
        RunRecord {
            id: run.id,
            setting: run.settings.key(),
            settings: run.settings,
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
        let of = |m: &str| {
            summary
                .iter()
                .find(|s| s.settings.tuning.method.name() == m)
                .unwrap()
        };
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
        let of = |m: &str| {
            summary
                .iter()
                .find(|s| s.settings.tuning.method.name() == m)
                .unwrap()
        };
        let curve = &of("pt2").curve;
        assert_eq!(curve.len(), 4);
        for (got, want) in curve.iter().zip([0.60, 0.80, 0.75, 0.775]) {
            assert!((got - want).abs() < 1e-12, "{curve:?}");
        }
        assert_eq!(of("ft").curve.len(), 3);
    }
}
