//! A sweep's results as rows: one per run × split × metric, every grid axis a column, plus what the
//! run cost (trainable params, wall time, steps/s, peak memory) and its status. Summaries over
//! seeds, charts and the report are pure functions of these rows.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::runner::{read_status, RunStatus, SweepEnv};
use crate::sweep::PlannedRun;
use crate::train::{RunMetrics, METRICS_FILE};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub run_id: String,
    pub model: String,
    pub task: String,
    pub method: String,
    pub prompt_len: usize,
    pub reparam_hidden: Option<usize>,
    pub prefix_layers: String,
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub max_train: Option<usize>,
    pub max_eval: Option<usize>,
    pub max_len: usize,
    pub status: String,
    pub split: String,
    pub metric: String,
    pub value: Option<f64>,
    /// Is this the metric that picks the best epoch?
    pub main: bool,
    pub best_epoch: Option<usize>,
    pub trainable_params: Option<usize>,
    pub total_params: Option<usize>,
    pub trainable_percent: Option<f64>,
    pub wall_seconds: Option<f64>,
    pub steps_per_second: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub error: Option<String>,
}

pub const COLUMNS: &[&str] = &[
    "run_id",
    "model",
    "task",
    "method",
    "prompt_len",
    "reparam_hidden",
    "prefix_layers",
    "lr",
    "epochs",
    "batch_size",
    "seed",
    "max_train",
    "max_eval",
    "max_len",
    "status",
    "split",
    "metric",
    "value",
    "main",
    "best_epoch",
    "trainable_params",
    "total_params",
    "trainable_percent",
    "wall_seconds",
    "steps_per_second",
    "peak_rss_mb",
    "error",
];

/// The rows of every run of a sweep that has a `status.json` (pending runs have no rows).
pub fn collect(runs: &[PlannedRun], env: &SweepEnv) -> Result<Vec<ResultRow>> {
    let mut rows = vec![];
    for run in runs {
        let dir = env.run_dir(&run.id);
        let Some(status) = read_status(&dir) else {
            continue;
        };
        let c = &run.config;
        let (reparam_hidden, prefix_layers) = match &c.method {
            ptv2_models::Method::Pt2 {
                reparam_hidden,
                layers,
                ..
            } => (*reparam_hidden, layers.to_string()),
            _ => (None, String::new()),
        };
        let base = ResultRow {
            run_id: run.id.clone(),
            model: c.model.clone(),
            task: c.task.clone(),
            method: c.method.name().into(),
            prompt_len: c.method.prompt_len(),
            reparam_hidden,
            prefix_layers,
            lr: c.lr,
            epochs: c.epochs,
            batch_size: c.batch_size,
            seed: c.seed,
            max_train: c.max_train,
            max_eval: c.max_eval,
            max_len: c.max_len,
            status: format!("{:?}", status.status).to_lowercase(),
            split: "dev".into(),
            metric: String::new(),
            value: None,
            main: false,
            best_epoch: None,
            trainable_params: None,
            total_params: None,
            trainable_percent: None,
            wall_seconds: None,
            steps_per_second: None,
            peak_rss_mb: None,
            error: status.error.clone(),
        };
        if status.status != RunStatus::Ok {
            rows.push(base);
            continue;
        }
        let path = dir.join(METRICS_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let m: RunMetrics = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a ptv2 metrics file", path.display()))?;
        for (i, (metric, value)) in m.best_dev.iter().enumerate() {
            rows.push(ResultRow {
                metric: metric.clone(),
                value: Some(*value),
                main: i == 0,
                best_epoch: Some(m.best_epoch),
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
    Ok(rows)
}

/// One configuration's score over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub model: String,
    pub task: String,
    pub method: String,
    pub prompt_len: usize,
    pub prefix_layers: String,
    pub reparam_hidden: Option<usize>,
    pub lr: f64,
    pub metric: String,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one seed.
    pub std: f64,
    pub n: usize,
    pub trainable_params: usize,
    pub trainable_percent: f64,
    pub total_params: usize,
}

/// Mean, std and count of each configuration's main dev metric over seeds.
pub fn summarize(rows: &[ResultRow]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<
        (
            String,
            String,
            String,
            usize,
            String,
            Option<usize>,
            String,
            String,
        ),
        Vec<&ResultRow>,
    > = BTreeMap::new();
    for r in rows.iter().filter(|r| r.main && r.value.is_some()) {
        let key = (
            r.model.clone(),
            r.task.clone(),
            r.method.clone(),
            r.prompt_len,
            r.prefix_layers.clone(),
            r.reparam_hidden,
            format!("{:e}", r.lr),
            r.metric.clone(),
        );
        groups.entry(key).or_default().push(r);
    }
    groups
        .into_values()
        .map(|group| {
            let values: Vec<f64> = group.iter().filter_map(|r| r.value).collect();
            let n = values.len();
            let mean = values.iter().sum::<f64>() / n as f64;
            let std = if n > 1 {
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                0.0
            };
            let first = group[0];
            SummaryRow {
                model: first.model.clone(),
                task: first.task.clone(),
                method: first.method.clone(),
                prompt_len: first.prompt_len,
                prefix_layers: first.prefix_layers.clone(),
                reparam_hidden: first.reparam_hidden,
                lr: first.lr,
                metric: first.metric.clone(),
                mean,
                std,
                n,
                trainable_params: first.trainable_params.unwrap_or(0),
                trainable_percent: first.trainable_percent.unwrap_or(0.0),
                total_params: first.total_params.unwrap_or(0),
            }
        })
        .collect()
}

pub fn summary_markdown(summary: &[SummaryRow]) -> String {
    let mut out = String::from("| model | task | method | P | layers | lr | metric | mean | std | n | trainable | % |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in summary {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.4} | {:.4} | {} | {} | {:.3} |\n",
            s.model,
            s.task,
            s.method,
            if s.method == "ft" {
                "–".into()
            } else {
                s.prompt_len.to_string()
            },
            if s.prefix_layers.is_empty() {
                "–"
            } else {
                &s.prefix_layers
            },
            s.lr,
            s.metric,
            s.mean,
            s.std,
            s.n,
            s.trainable_params,
            s.trainable_percent
        ));
    }
    out
}

/// Write results.parquet/.csv, summary.parquet/.csv and summary.md into the sweep dir.
pub fn write_tables(rows: &[ResultRow], dir: &Path) -> Result<Vec<SummaryRow>> {
    let summary = summarize(rows);
    crate::table::write_frame(
        &mut crate::table::results_frame(rows)?,
        &dir.join("results"),
    )?;
    crate::table::write_frame(
        &mut crate::table::summary_frame(&summary)?,
        &dir.join("summary"),
    )?;
    crate::io::write_atomic(
        &dir.join("summary.md"),
        summary_markdown(&summary).as_bytes(),
    )?;
    Ok(summary)
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A finished run's main-metric row, for tests.
    pub(crate) fn row(task: &str, method: &str, p: usize, seed: u64, value: f64) -> ResultRow {
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
            lr: 0.01,
            epochs: 1,
            batch_size: 8,
            seed,
            max_train: None,
            max_eval: None,
            max_len: 128,
            status: "ok".into(),
            split: "dev".into(),
            metric: "accuracy".into(),
            value: Some(value),
            main: true,
            best_epoch: Some(0),
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
    fn summary_averages_over_seeds() {
        let rows = vec![
            row("rte", "pt2", 8, 1, 0.5),
            row("rte", "pt2", 8, 2, 0.7),
            row("rte", "ft", 0, 1, 0.6),
        ];
        let s = summarize(&rows);
        assert_eq!(s.len(), 2);
        let pt2 = s.iter().find(|s| s.method == "pt2").unwrap();
        assert!(
            (pt2.mean - 0.6).abs() < 1e-12 && (pt2.std - 0.1414213562).abs() < 1e-9 && pt2.n == 2
        );
    }
}
