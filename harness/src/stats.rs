//! The statistics a reviewer asks for: a paired bootstrap of a score difference between two
//! methods on the same dev examples (1,000 resamples of the dev set, percentile 95% interval), on
//! the runs' saved dev predictions. Each resample scores every seed's run of both methods on the
//! same examples, so the interval holds the dev set's sampling noise, with the seed noise averaged.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::metrics;

/// One run's dev predictions as class indices (`labels` order).
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub gold: Vec<usize>,
    pub pred: Vec<usize>,
}

/// Read ptv2's `dev_predictions.tsv` (`id gold prediction`) of a classification task.
pub fn read_predictions(path: &Path, labels: &[String]) -> Result<Predictions> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let class = |name: &str, line: usize| -> Result<usize> {
        labels
            .iter()
            .position(|l| l == name)
            .with_context(|| format!("{}:{line}: \"{name}\" is not one of the labels {labels:?}", path.display()))
    };
    let mut out = Predictions {
        gold: vec![],
        pred: vec![],
    };
    for (i, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 3 {
            bail!("{}:{}: expected id, gold, prediction", path.display(), i + 1);
        }
        out.gold.push(class(fields[fields.len() - 2], i + 1)?);
        out.pred.push(class(fields[fields.len() - 1], i + 1)?);
    }
    Ok(out)
}

/// The metric by its name in metrics.json, for class predictions (F1 of class 1, as MRPC's).
pub fn metric_by_name(name: &str) -> Option<fn(&[usize], &[usize]) -> f64> {
    match name {
        "accuracy" => Some(metrics::accuracy),
        "f1" => Some(|p, g| metrics::f1_for_class(p, g, 1)),
        "matthews" => Some(metrics::matthews),
        _ => None,
    }
}

/// A difference `a − b` with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// Does the interval leave out zero?
    pub fn excludes_zero(&self) -> bool {
        self.lo > 0.0 || self.hi < 0.0
    }
}

/// SplitMix64: a small seeded stream for the resample indices.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The mean over runs of `metric` on the examples `indices`.
fn mean_score(
    runs: &[Predictions],
    indices: &[usize],
    metric: fn(&[usize], &[usize]) -> f64,
) -> f64 {
    let total: f64 = runs
        .iter()
        .map(|r| {
            let pred: Vec<usize> = indices.iter().map(|&i| r.pred[i]).collect();
            let gold: Vec<usize> = indices.iter().map(|&i| r.gold[i]).collect();
            metric(&pred, &gold)
        })
        .sum();
    total / runs.len() as f64
}

/// Paired bootstrap of mean-over-seeds score(a) − score(b) on the same dev examples.
pub fn paired_bootstrap(
    a: &[Predictions],
    b: &[Predictions],
    metric: fn(&[usize], &[usize]) -> f64,
    resamples: usize,
    seed: u64,
) -> Result<Interval> {
    let n = a.first().map_or(0, |r| r.gold.len());
    if a.is_empty() || b.is_empty() || n == 0 {
        bail!("a bootstrap needs predictions of both methods");
    }
    if a.iter().chain(b).any(|r| r.gold.len() != n || r.pred.len() != n || r.gold != a[0].gold) {
        bail!("the runs were scored on different dev examples");
    }
    let all: Vec<usize> = (0..n).collect();
    let diff = mean_score(a, &all, metric) - mean_score(b, &all, metric);
    let mut state = seed;
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let indices: Vec<usize> = (0..n).map(|_| (next(&mut state) % n as u64) as usize).collect();
            mean_score(a, &indices, metric) - mean_score(b, &indices, metric)
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let at = |q: f64| diffs[((q * resamples as f64) as usize).min(resamples - 1)];
    Ok(Interval {
        diff,
        lo: at(0.025),
        hi: at(0.975),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(gold: &[usize], pred: &[usize]) -> Predictions {
        Predictions {
            gold: gold.to_vec(),
            pred: pred.to_vec(),
        }
    }

    #[test]
    fn identical_runs_differ_by_exactly_zero() {
        let a = run(&[0, 1, 1, 0, 1], &[0, 1, 0, 0, 1]);
        let i = paired_bootstrap(&[a.clone()], &[a], metrics::accuracy, 1000, 7).unwrap();
        assert_eq!((i.diff, i.lo, i.hi), (0.0, 0.0, 0.0));
        assert!(!i.excludes_zero());
    }

    #[test]
    fn a_paired_accuracy_difference_has_the_textbook_interval() {
        // 2,000 examples: A right and B wrong on 300, B right and A wrong on 100, both the same
        // on the rest. The per-example difference d ∈ {1, −1, 0} has mean 0.1 and variance
        // 0.2 − 0.01 = 0.19, so the 95% interval is 0.1 ± 1.96·√(0.19/2000) = 0.1 ± 0.0191.
        let n = 2000;
        let gold = vec![1; n];
        let a: Vec<usize> = (0..n).map(|i| usize::from(i < 300 || i >= 400)).collect();
        let b: Vec<usize> = (0..n).map(|i| usize::from(i >= 300)).collect();
        let i = paired_bootstrap(&[run(&gold, &a)], &[run(&gold, &b)], metrics::accuracy, 1000, 1)
            .unwrap();
        assert!((i.diff - 0.1).abs() < 1e-12, "{i:?}");
        let half = 1.96 * (0.19f64 / n as f64).sqrt();
        assert!(((i.hi - i.lo) / 2.0 - half).abs() < 0.15 * half, "{i:?} vs ±{half}");
        assert!(((i.hi + i.lo) / 2.0 - 0.1).abs() < 0.004, "{i:?}");
        assert!(i.excludes_zero());
    }

    #[test]
    fn seeds_are_averaged_and_labels_are_read_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev_predictions.tsv");
        std::fs::write(&path, "id\tgold\tprediction\na:1\tyes\tno\na:2\tno\tno\n").unwrap();
        let labels = vec!["no".to_string(), "yes".to_string()];
        let p = read_predictions(&path, &labels).unwrap();
        assert_eq!(p, run(&[1, 0], &[0, 0]));
        std::fs::write(&path, "id\tgold\tprediction\na:1\tmaybe\tno\n").unwrap();
        let err = read_predictions(&path, &labels).unwrap_err().to_string();
        assert!(err.contains(":2: \"maybe\" is not one of the labels"), "{err}");
        // Two seeds of A at 1.0 and 0.5 against B at 0.5: the mean difference is 0.25.
        let gold = [1, 1];
        let i = paired_bootstrap(
            &[run(&gold, &[1, 1]), run(&gold, &[1, 0])],
            &[run(&gold, &[0, 1])],
            metrics::accuracy,
            200,
            3,
        )
        .unwrap();
        assert!((i.diff - 0.25).abs() < 1e-12);
    }
}
