//! `ptv2 check NAME --baseline FILE`: the regression check. Every configuration of the baseline
//! (a committed `summary.csv` from a real run) must be present in the sweep's current results and
//! score no lower than the baseline minus the tolerance.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::results::SummaryRow;

/// The identity of a configuration across runs of a sweep.
fn key(
    model: &str,
    task: &str,
    method: &str,
    prompt_len: &str,
    prefix_layers: &str,
    reparam: &str,
    lr: f64,
    metric: &str,
) -> String {
    format!("{model} {task} {method} P={prompt_len} layers={prefix_layers} reparam={reparam} lr={lr} {metric}")
}

fn summary_key(s: &SummaryRow) -> String {
    let reparam = s.reparam_hidden.map_or(String::new(), |h| h.to_string());
    key(
        &s.model,
        &s.task,
        &s.method,
        &s.prompt_len.to_string(),
        &s.prefix_layers,
        &reparam,
        s.lr,
        &s.metric,
    )
}

/// Baseline rows: (configuration, mean) from a `summary.csv`.
pub fn read_baseline(path: &Path) -> Result<Vec<(String, f64)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read baseline {}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split(',').collect())
        .unwrap_or_default();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("{}:1: no column \"{name}\"", path.display()))
    };
    let cols = [
        "model",
        "task",
        "method",
        "prompt_len",
        "prefix_layers",
        "reparam_hidden",
        "lr",
        "metric",
        "mean",
    ]
    .map(col);
    let mut idx = [0usize; 9];
    for (i, c) in cols.into_iter().enumerate() {
        idx[i] = c?;
    }
    let mut rows = vec![];
    for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < header.len() {
            bail!(
                "{}:{}: expected {} comma-separated fields, found {}",
                path.display(),
                i + 1,
                header.len(),
                f.len()
            );
        }
        let number = |j: usize, what: &str| -> Result<f64> {
            f[j].parse().with_context(|| {
                format!(
                    "{}:{}: {what} \"{}\" is not a number",
                    path.display(),
                    i + 1,
                    f[j]
                )
            })
        };
        let lr = number(idx[6], "lr")?;
        let mean = number(idx[8], "mean")?;
        rows.push((
            key(
                f[idx[0]], f[idx[1]], f[idx[2]], f[idx[3]], f[idx[4]], f[idx[5]], lr, f[idx[7]],
            ),
            mean,
        ));
    }
    Ok(rows)
}

/// One line of the check's table.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLine {
    pub config: String,
    pub baseline: f64,
    pub current: Option<f64>,
    pub passed: bool,
}

pub fn compare(
    baseline: &[(String, f64)],
    current: &[SummaryRow],
    tolerance: f64,
) -> Vec<CheckLine> {
    baseline
        .iter()
        .map(|(config, base)| {
            let now = current
                .iter()
                .find(|s| summary_key(s) == *config)
                .map(|s| s.mean);
            CheckLine {
                config: config.clone(),
                baseline: *base,
                current: now,
                passed: now.is_some_and(|n| n >= base - tolerance),
            }
        })
        .collect()
}

pub fn table(lines: &[CheckLine], tolerance: f64) -> String {
    let width = lines
        .iter()
        .map(|l| l.config.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "{:<width$}  {:>9}  {:>9}  {:>8}  status (tolerance {tolerance})\n",
        "config", "baseline", "current", "change"
    );
    for l in lines {
        let (current, change) = match l.current {
            Some(c) => (format!("{c:.4}"), format!("{:+.4}", c - l.baseline)),
            None => ("missing".into(), "–".into()),
        };
        out.push_str(&format!(
            "{:<width$}  {:>9.4}  {current:>9}  {change:>8}  {}\n",
            l.config,
            l.baseline,
            if l.passed { "ok" } else { "REGRESSED" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{summarize, tests_support::row};

    #[test]
    fn passes_within_tolerance_and_fails_below_it() {
        let summary = summarize(&[
            row("sst2", "pt2", 16, 1, 0.80),
            row("sst2", "ft", 0, 1, 0.85),
        ]);
        let dir = tempfile::tempdir().unwrap();
        crate::table::write_frame(&mut crate::table::summary_frame(&summary).unwrap(), &dir.path().join("summary")).unwrap();
        let path = dir.path().join("summary.csv");
        let baseline = read_baseline(&path).unwrap();
        assert!(compare(&baseline, &summary, 0.0).iter().all(|l| l.passed));

        let doctored = std::fs::read_to_string(&path).unwrap().replace("0.85,", "0.9,");
        std::fs::write(&path, doctored).unwrap();
        let lines = compare(&read_baseline(&path).unwrap(), &summary, 0.02);
        assert_eq!(lines.iter().filter(|l| !l.passed).count(), 1);
        assert!(table(&lines, 0.02).contains("REGRESSED"));
        // A configuration that disappeared fails too.
        assert!(!compare(&read_baseline(&path).unwrap(), &summary[..1], 0.5)
            .iter()
            .all(|l| l.passed));
    }
}
