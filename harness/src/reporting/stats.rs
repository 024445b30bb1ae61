//! The statistics a reviewer asks for: a paired bootstrap of a score difference between two
//! methods on the same dev examples (1,000 resamples of the dev set, percentile 95% interval), on
//! the runs' saved dev predictions. Each resample scores every seed's run of both methods on the
//! same examples, so the interval holds the dev set's sampling noise, with the seed noise averaged.
//!
//! Every supported metric is a function of sums over dev units (examples, or sentences for NER,
//! whose entities never cross a sentence): each unit keeps its counts, and a resample adds them.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::records::metrics;

/// Per-unit counts, and the metric as a function of their sums.
type Counts = [f64; 4];

/// One run's dev predictions, as the counts its metric sums.
#[derive(Debug, Clone)]
pub struct Predictions {
    units: Vec<Counts>,
    metric: fn(&Counts) -> f64,
    /// The gold labels, to check that two runs were scored on the same examples.
    gold: Vec<String>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// [correct, 1, -, -]
fn accuracy(c: &Counts) -> f64 {
    ratio(c[0], c[1])
}

/// [true positives, predicted, gold, -] → 2·tp / (predicted + gold): class-1 F1, entity F1.
fn f1(c: &Counts) -> f64 {
    ratio(2.0 * c[0], c[1] + c[2])
}

/// [tp, tn, fp, fn]
fn matthews(c: &Counts) -> f64 {
    let [tp, tn, fp, fn_] = *c;
    ratio(
        tp * tn - fp * fn_,
        ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt(),
    )
}

impl PartialEq for Predictions {
    /// The same counts of the same gold labels (the metric is a function of the counts).
    fn eq(&self, other: &Self) -> bool {
        self.units == other.units && self.gold == other.gold
    }
}

impl Predictions {
    /// Class predictions scored by `metric` (`accuracy`, `f1` of class 1, `matthews`).
    pub fn classes(gold: &[usize], pred: &[usize], metric: &str) -> Option<Self> {
        let one = |x: bool| f64::from(u8::from(x));
        let (units, score): (Vec<Counts>, fn(&Counts) -> f64) = match metric {
            "accuracy" => (
                gold.iter()
                    .zip(pred)
                    .map(|(g, p)| [one(g == p), 1.0, 0.0, 0.0])
                    .collect(),
                accuracy,
            ),
            "f1" => (
                gold.iter()
                    .zip(pred)
                    .map(|(&g, &p)| [one(g == 1 && p == 1), one(p == 1), one(g == 1), 0.0])
                    .collect(),
                f1,
            ),
            "matthews" => (
                gold.iter()
                    .zip(pred)
                    .map(|(&g, &p)| {
                        [
                            one(p == 1 && g == 1),
                            one(p == 0 && g == 0),
                            one(p == 1 && g == 0),
                            one(p == 0 && g == 1),
                        ]
                    })
                    .collect(),
                matthews,
            ),
            _ => return None,
        };
        Some(Self {
            units,
            metric: score,
            gold: gold.iter().map(usize::to_string).collect(),
        })
    }

    /// Tag sequences scored by seqeval's entity micro-F1, one unit per sentence.
    pub fn tags(gold: &[Vec<String>], pred: &[Vec<String>]) -> Self {
        let units = gold
            .iter()
            .zip(pred)
            .map(|(g, p)| {
                let g: std::collections::HashSet<_> = metrics::entities(std::slice::from_ref(g))
                    .into_iter()
                    .collect();
                let p: std::collections::HashSet<_> = metrics::entities(std::slice::from_ref(p))
                    .into_iter()
                    .collect();
                [
                    g.intersection(&p).count() as f64,
                    p.len() as f64,
                    g.len() as f64,
                    0.0,
                ]
            })
            .collect();
        Self {
            units,
            metric: f1,
            gold: gold.iter().map(|g| g.join(" ")).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The metric on the units `indices` (with repeats).
    pub fn score(&self, indices: &[usize]) -> f64 {
        let mut sum = [0.0; 4];
        for &i in indices {
            for (s, c) in sum.iter_mut().zip(&self.units[i]) {
                *s += c;
            }
        }
        (self.metric)(&sum)
    }

    /// Read a run's dev predictions: ptv2's `dev_predictions.tsv` (`id gold prediction`, labels
    /// by name in `labels` order) or `dev_predictions.conll` (`word gold prediction`).
    pub fn read(path: &Path, labels: &[String], metric: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "conll") {
            let (mut gold, mut pred) = (vec![vec![]], vec![vec![]]);
            for (i, line) in text.lines().enumerate() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields.as_slice() {
                    [] if !gold.last().is_some_and(Vec::is_empty) => {
                        gold.push(vec![]);
                        pred.push(vec![]);
                    }
                    [] => {}
                    [.., g, p] => {
                        gold.last_mut()
                            .expect("one open sentence")
                            .push(g.to_string());
                        pred.last_mut()
                            .expect("one open sentence")
                            .push(p.to_string());
                    }
                    _ => bail!(
                        "{}:{}: expected word, gold, prediction",
                        path.display(),
                        i + 1
                    ),
                }
            }
            gold.retain(|s| !s.is_empty());
            pred.retain(|s| !s.is_empty());
            return Ok(Self::tags(&gold, &pred));
        }
        let class = |name: &str, line: usize| -> Result<usize> {
            labels.iter().position(|l| l == name).with_context(|| {
                format!(
                    "{}:{line}: \"{name}\" is not one of the labels {labels:?}",
                    path.display()
                )
            })
        };
        let (mut gold, mut pred) = (vec![], vec![]);
        for (i, line) in text.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() < 3 {
                bail!(
                    "{}:{}: expected id, gold, prediction",
                    path.display(),
                    i + 1
                );
            }
            gold.push(class(fields[fields.len() - 2], i + 1)?);
            pred.push(class(fields[fields.len() - 1], i + 1)?);
        }
        Self::classes(&gold, &pred, metric).with_context(|| {
            format!(
                "{}: no bootstrap for the metric \"{metric}\"",
                path.display()
            )
        })
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

fn mean_score(runs: &[Predictions], indices: &[usize]) -> f64 {
    runs.iter().map(|r| r.score(indices)).sum::<f64>() / runs.len() as f64
}

/// Paired bootstrap of mean-over-seeds score(a) − score(b) on the same dev examples.
pub fn paired_bootstrap(
    a: &[Predictions],
    b: &[Predictions],
    resamples: usize,
    seed: u64,
) -> Result<Interval> {
    let n = a.first().map_or(0, Predictions::len);
    if a.is_empty() || b.is_empty() || n == 0 || resamples == 0 {
        bail!("a bootstrap needs predictions of both methods");
    }
    if a.iter().chain(b).any(|r| r.gold != a[0].gold) {
        bail!("the runs were scored on different dev examples");
    }
    let all: Vec<usize> = (0..n).collect();
    let diff = mean_score(a, &all) - mean_score(b, &all);
    let mut state = seed;
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let indices: Vec<usize> = (0..n)
                .map(|_| (next(&mut state) % n as u64) as usize)
                .collect();
            mean_score(a, &indices) - mean_score(b, &indices)
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

    fn accuracy_of(gold: &[usize], pred: &[usize]) -> Predictions {
        Predictions::classes(gold, pred, "accuracy").unwrap()
    }

    #[test]
    fn counts_give_the_metrics_of_metrics_rs() {
        let gold = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1];
        let pred = [1, 0, 0, 1, 1, 0, 1, 1, 1, 0];
        let all: Vec<usize> = (0..gold.len()).collect();
        for (name, expected) in [
            ("accuracy", metrics::accuracy(&pred, &gold)),
            ("f1", metrics::f1_for_class(&pred, &gold, 1)),
            ("matthews", metrics::matthews(&pred, &gold)),
        ] {
            let score = Predictions::classes(&gold, &pred, name)
                .unwrap()
                .score(&all);
            assert!(
                (score - expected).abs() < 1e-12,
                "{name}: {score} vs {expected}"
            );
        }
        let tags = |s: &str| -> Vec<Vec<String>> {
            s.split('|')
                .map(|t| t.split_whitespace().map(String::from).collect())
                .collect()
        };
        let (g, p) = (
            tags("B-PER I-PER O|B-LOC O B-ORG|O O"),
            tags("B-PER I-PER O|B-LOC O O|B-MISC O"),
        );
        let score = Predictions::tags(&g, &p).score(&[0, 1, 2]);
        assert!((score - metrics::seqeval(&g, &p).f1).abs() < 1e-12);
    }

    #[test]
    fn identical_runs_differ_by_exactly_zero() {
        let a = accuracy_of(&[0, 1, 1, 0, 1], &[0, 1, 0, 0, 1]);
        let i =
            paired_bootstrap(std::slice::from_ref(&a), std::slice::from_ref(&a), 1000, 7).unwrap();
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
        let a: Vec<usize> = (0..n)
            .map(|i| usize::from(!(300..400).contains(&i)))
            .collect();
        let b: Vec<usize> = (0..n).map(|i| usize::from(i >= 300)).collect();
        let i = paired_bootstrap(
            &[accuracy_of(&gold, &a)],
            &[accuracy_of(&gold, &b)],
            1000,
            1,
        )
        .unwrap();
        assert!((i.diff - 0.1).abs() < 1e-12, "{i:?}");
        let half = 1.96 * (0.19f64 / n as f64).sqrt();
        assert!(
            ((i.hi - i.lo) / 2.0 - half).abs() < 0.15 * half,
            "{i:?} vs ±{half}"
        );
        assert!(((i.hi + i.lo) / 2.0 - 0.1).abs() < 0.004, "{i:?}");
        assert!(i.excludes_zero());
    }

    #[test]
    fn seeds_are_averaged_and_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev_predictions.tsv");
        std::fs::write(&path, "id\tgold\tprediction\na:1\tyes\tno\na:2\tno\tno\n").unwrap();
        let labels = vec!["no".to_string(), "yes".to_string()];
        let p = Predictions::read(&path, &labels, "accuracy").unwrap();
        assert_eq!(p, accuracy_of(&[1, 0], &[0, 0]));
        std::fs::write(&path, "id\tgold\tprediction\na:1\tmaybe\tno\n").unwrap();
        let err = Predictions::read(&path, &labels, "accuracy")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":2: \"maybe\" is not one of the labels"),
            "{err}"
        );
        let conll = dir.path().join("dev_predictions.conll");
        std::fs::write(
            &conll,
            "EU B-ORG B-ORG\nrejects O O\n\nPeter B-PER B-LOC\n\n",
        )
        .unwrap();
        let p = Predictions::read(&conll, &[], "f1").unwrap();
        assert_eq!(p.len(), 2);
        assert!((p.score(&[0, 1]) - 0.5).abs() < 1e-12);
        // Two seeds of A at 1.0 and 0.5 against B at 0.5: the mean difference is 0.25.
        let gold = [1, 1];
        let i = paired_bootstrap(
            &[accuracy_of(&gold, &[1, 1]), accuracy_of(&gold, &[1, 0])],
            &[accuracy_of(&gold, &[0, 1])],
            200,
            3,
        )
        .unwrap();
        assert!((i.diff - 0.25).abs() < 1e-12);
    }
}
