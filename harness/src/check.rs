//! `ptv2 check NAME --baseline FILE`: the regression check. Every configuration of the baseline
//! (a committed `summary.csv` from a real run) must be present in the sweep's current results and
//! score no lower than the baseline minus the tolerance.

use std::path::Path;

use anyhow::{Context, Result};

use crate::results::SummaryRow;

/// The identity of a configuration across runs of a sweep: its setting key (every run setting
/// but the seed) and the metric.
fn key(setting: &str, metric: &str) -> String {
    format!("{setting} {metric}")
}

/// Baseline rows: (configuration, mean) from a `summary.csv` (read with polars' CSV reader).
pub fn read_baseline(path: &Path) -> Result<Vec<(String, f64)>> {
    use polars::prelude::{CsvReadOptions, DataType, SerReader};
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|e| anyhow::anyhow!("{}: not a readable summary CSV: {e}", path.display()))?;
    let text = |name: &str| -> Result<Vec<String>> {
        let column = df.column(name).map_err(|_| {
            anyhow::anyhow!(
                "{}: no column \"{name}\" (a summary.csv written by ptv2 has one)",
                path.display()
            )
        })?;
        let column = column
            .cast(&DataType::String)
            .map_err(|e| anyhow::anyhow!("{}: column {name}: {e}", path.display()))?;
        let strings = column.str().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((0..strings.len())
            .map(|i| strings.get(i).unwrap_or_default().to_string())
            .collect())
    };
    let (setting, metric, mean) = (text("setting")?, text("metric")?, text("mean")?);
    (0..df.height())
        .map(|i| {
            let value = mean[i].parse().with_context(|| {
                format!(
                    "{}:{}: mean \"{}\" is not a number",
                    path.display(),
                    i + 2,
                    mean[i]
                )
            })?;
            Ok((key(&setting[i], &metric[i]), value))
        })
        .collect()
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
                .find(|s| key(&s.setting, &s.metric) == *config)
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
        crate::table::write_frame(
            &mut crate::table::frame(&summary).unwrap(),
            &dir.path().join("summary"),
        )
        .unwrap();
        let path = dir.path().join("summary.csv");
        let baseline = read_baseline(&path).unwrap();
        assert!(compare(&baseline, &summary, 0.0).iter().all(|l| l.passed));

        let doctored = std::fs::read_to_string(&path)
            .unwrap()
            .replace(",0.85,", ",0.9,");
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
