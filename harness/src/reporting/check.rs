//! `ptv2 check NAME --baseline FILE`: the regression check. Every configuration of the baseline
//! (a committed `summary.csv` from a real run) must be present in the sweep's current results and
//! score no lower than the baseline minus the tolerance.

use std::path::Path;

use anyhow::{Context, Result};

use crate::reporting::results::SummaryRow;

/// The identity of a configuration across runs of a sweep: its setting key (every run setting
/// but the seed) and the metric.
fn key(setting: &str, metric: &str) -> String {
    format!("{setting} {metric}")
}

/// What a baseline row is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// One configuration (a `summary.csv` row of a real run): its key and metric.
    Configuration(String),
    /// A published number.
    Best(Published),
}

/// A published number's row (`model,task,method,metric,split,mean` without `setting`): set
/// against the best configuration of that model, task and method in the sweep, on dev, or on
/// test at the best dev epoch (`split = test`, as the reference reports NER).
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub model: String,
    pub task: String,
    pub method: ptv2_models::MethodKind,
    pub metric: String,
    pub test: bool,
}

impl Target {
    fn label(&self) -> String {
        match self {
            Self::Configuration(key) => key.clone(),
            Self::Best(p) => format!(
                "{} {} {} {} ({}, best configuration)",
                p.model,
                p.task,
                p.method,
                p.metric,
                if p.test { "test" } else { "dev" }
            ),
        }
    }

    /// The sweep's current score for this target, if it has one.
    fn current(&self, summary: &[SummaryRow]) -> Option<f64> {
        match self {
            Self::Configuration(config) => summary
                .iter()
                .find(|s| key(&s.setting, &s.metric) == *config)
                .map(|s| s.mean),
            Self::Best(p) => {
                let best = summary
                    .iter()
                    .filter(|s| {
                        let t = &s.settings;
                        (&t.model, &t.task, t.tuning.method, &s.metric)
                            == (&p.model, &p.task, p.method, &p.metric)
                            && t.framework == crate::records::settings::Framework::Ptv2
                    })
                    .max_by(|a, b| a.mean.total_cmp(&b.mean))?;
                if p.test {
                    best.test_mean
                } else {
                    Some(best.mean)
                }
            }
        }
    }
}

/// Baseline rows: (what to compare, value) from a `summary.csv` (read with polars' CSV reader),
/// or from a table of published numbers (`model,task,method,metric,split,mean`, no `setting`).
pub fn read_baseline(path: &Path) -> Result<Vec<(Target, f64)>> {
    use polars::prelude::{CsvReadOptions, DataType, SerReader};
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|e| anyhow::anyhow!("{}: not a readable summary CSV: {e}", path.display()))?;
    let text = |name: &str| -> Result<Vec<String>> {
        let column = df.column(name).map_err(|_| {
            anyhow::anyhow!(
                "{}: no column \"{name}\" (a summary.csv written by ptv2 has one; a table of published numbers has model, task, method, metric, split, mean)",
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
    if df.column("setting").is_err() && df.column("model").is_err() {
        anyhow::bail!(
            "{}: no column \"setting\" (a summary.csv written by ptv2 has one) and no \"model\" (a table of published numbers has model, task, method, metric, split, mean)",
            path.display()
        );
    }
    let (metric, mean) = (text("metric")?, text("mean")?);
    let targets: Vec<Target> = if df.column("setting").is_ok() {
        let setting = text("setting")?;
        (0..df.height())
            .map(|i| Target::Configuration(key(&setting[i], &metric[i])))
            .collect()
    } else {
        let columns = [
            text("model")?,
            text("task")?,
            text("method")?,
            text("split")?,
        ];
        published_targets(path, columns, &metric)?
    };
    targets
        .into_iter()
        .enumerate()
        .map(|(i, target)| {
            let value = mean[i].parse().with_context(|| {
                format!(
                    "{}:{}: mean \"{}\" is not a number",
                    path.display(),
                    i + 2,
                    mean[i]
                )
            })?;
            Ok((target, value))
        })
        .collect()
}

/// The targets of a table of published numbers: each row's model, task, method and metric, on
/// dev or on test at the best dev epoch.
fn published_targets(
    path: &Path,
    [model, task, method, split]: [Vec<String>; 4],
    metric: &[String],
) -> Result<Vec<Target>> {
    (0..model.len())
        .map(|i| match split[i].as_str() {
            "dev" | "test" => Ok(Target::Best(Published {
                model: model[i].clone(),
                task: task[i].clone(),
                method: method[i]
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 2))?,
                metric: metric[i].clone(),
                test: split[i] == "test",
            })),
            other => Err(anyhow::anyhow!(
                "{}:{}: split \"{other}\": expected dev or test",
                path.display(),
                i + 2
            )),
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
    baseline: &[(Target, f64)],
    current: &[SummaryRow],
    tolerance: f64,
) -> Vec<CheckLine> {
    baseline
        .iter()
        .map(|(target, base)| {
            let now = target.current(current);
            CheckLine {
                config: target.label(),
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
    use crate::reporting::results::{summarize, tests_support::row};

    #[test]
    fn passes_within_tolerance_and_fails_below_it() {
        let summary = summarize(&[
            row("sst2", "pt2", 16, 1, 0.80),
            row("sst2", "ft", 0, 1, 0.85),
        ]);
        let dir = tempfile::tempdir().unwrap();
        crate::reporting::table::write_frame(
            &mut crate::reporting::table::frame(&summary).unwrap(),
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
        // A table of published numbers matches each method's best configuration, dev or test.
        let mut with_test = summary.clone();
        for row in with_test
            .iter_mut()
            .filter(|r| r.settings.tuning.method == ptv2_models::MethodKind::Pt2)
        {
            row.test_mean = Some(0.75);
        }
        let published = dir.path().join("published.csv");
        std::fs::write(
            &published,
            "model,task,method,metric,split,mean,source\nm,sst2,pt2,accuracy,dev,0.79,paper\nm,sst2,pt2,accuracy,test,0.8,paper\nm,sst2,lora,accuracy,dev,0.7,paper\n",
        )
        .unwrap();
        let lines = compare(&read_baseline(&published).unwrap(), &with_test, 0.0);
        let found: Vec<(Option<f64>, bool)> = lines.iter().map(|l| (l.current, l.passed)).collect();
        assert_eq!(
            found,
            [(Some(0.80), true), (Some(0.75), false), (None, false)]
        );
        std::fs::write(
            &published,
            "model,task,method,metric,split,mean\nm,sst2,pt2,accuracy,train,0.8\n",
        )
        .unwrap();
        let err = read_baseline(&published).unwrap_err().to_string();
        assert!(err.contains("published.csv:2: split \"train\""), "{err}");
        // A configuration that disappeared fails too.
        assert!(!compare(&read_baseline(&path).unwrap(), &summary[..1], 0.5)
            .iter()
            .all(|l| l.passed));
    }
}
