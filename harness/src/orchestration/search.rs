//! Search, not only grids: a sweep with `[search]` draws trials from a space of run settings and
//! spends epochs on the promising ones (schema: `experiments/README.md`). This file is pure: the
//! trials follow from the sweep file and the sampler's seed, and which trials go on follows from
//! the dev scores their run dirs hold (`decide`). Any number of workers, a kill, or a Slurm array
//! reach the same trials and promotions; `search_run.rs` does the training.
//!
//! `asha` is successive halving on ASHA's rungs (Li et al. 2020): every trial trains to `min_epochs`,
//! the best 1/η go on to min·η epochs, then min·η², … up to the run's `epochs`. A promoted trial
//! resumes from its saved state, and its schedule is its full `epochs`' from the start, so it is
//! the very run a straight training makes. Promotions are decided once a rung is complete rather
//! than as soon as a worker is free: the asynchronous form's choice depends on which trial finished
//! first, and ptv2 promises the same results whatever the workers' timing.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use toml::Value;

use crate::orchestration::sweep::{resolve, Combo};
use crate::records::run_dir::{PlannedRun, RunStatus};
use crate::records::settings::RunSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Every trial trained to the end.
    Random,
    /// Successive halving on ASHA's rungs.
    Asha,
}

/// Where one setting's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Space {
    /// Evenly in log space (learning rates), rounded to 3 significant digits.
    LogUniform(f64, f64),
    Uniform(f64, f64),
    /// Integers lo..=hi.
    IntUniform(i64, i64),
    Choice(Vec<Value>),
}

fn number(value: &Value) -> Option<f64> {
    value
        .as_float()
        .or_else(|| value.as_integer().map(|i| i as f64))
}

impl Space {
    /// `{ log_uniform = [1e-3, 1e-1] }`, `{ uniform = […] }`, `{ int_uniform = […] }` or
    /// `{ choice = […] }`.
    pub fn parse(key: &str, value: &Value, at: &str) -> Result<Self> {
        let expected = "one of { log_uniform = [lo, hi] }, { uniform = [lo, hi] }, { int_uniform = [lo, hi] }, { choice = [a, b, …] }";
        let entry = value.as_table().filter(|t| t.len() == 1);
        let Some((kind, arg)) = entry.and_then(|t| t.iter().next()) else {
            bail!("{at}: \"{key}\" = {value}: expected {expected}");
        };
        let bad = || anyhow::anyhow!("{at}: \"{key}\" = {value}: expected {expected}");
        let pair = || -> Result<(f64, f64)> {
            match arg
                .as_array()
                .map(|a| a.iter().map(number).collect::<Vec<_>>())
            {
                Some(v) if v.len() == 2 && v[0].is_some() && v[1].is_some() => {
                    let (lo, hi) = (v[0].expect("some"), v[1].expect("some"));
                    if lo < hi {
                        return Ok((lo, hi));
                    }
                    bail!("{at}: \"{key}\" = {value}: lo must be below hi")
                }
                _ => Err(bad()),
            }
        };
        Ok(match kind.as_str() {
            "log_uniform" => match pair()? {
                (lo, _) if lo <= 0.0 => {
                    bail!("{at}: \"{key}\" = {value}: log_uniform needs lo > 0")
                }
                (lo, hi) => Self::LogUniform(lo, hi),
            },
            "uniform" => {
                let (lo, hi) = pair()?;
                Self::Uniform(lo, hi)
            }
            "int_uniform" => {
                let ints = arg
                    .as_array()
                    .map(|a| a.iter().map(Value::as_integer).collect::<Vec<_>>());
                match ints.as_deref() {
                    Some(&[Some(lo), Some(hi)]) if lo <= hi => Self::IntUniform(lo, hi),
                    _ => return Err(bad()),
                }
            }
            "choice" => match arg.as_array() {
                Some(options) if !options.is_empty() => Self::Choice(options.clone()),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        })
    }

    /// The value at quantile `u` in [0, 1).
    pub fn at(&self, u: f64) -> Value {
        let u = u.clamp(0.0, 1.0 - 1e-12);
        match self {
            Self::LogUniform(lo, hi) => {
                Value::Float(round_sig((lo.ln() + u * (hi.ln() - lo.ln())).exp()))
            }
            Self::Uniform(lo, hi) => Value::Float(round_sig(lo + u * (hi - lo))),
            Self::IntUniform(lo, hi) => {
                Value::Integer(lo + (u * (hi - lo + 1) as f64).floor() as i64)
            }
            Self::Choice(options) => options[(u * options.len() as f64).floor() as usize].clone(),
        }
    }

    /// Is it drawn on a log scale (and charted on one)?
    pub fn is_log(&self) -> bool {
        matches!(self, Self::LogUniform(..))
    }
}

/// Three significant digits: `lr=0.00316` reads better than `lr=0.0031622776601683794` in run
/// listings and keeps the run ids of a search stable across platforms' `exp`.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// FNV-1a: a seed for each searched setting, the same on every platform.
fn seed_of(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The quantiles of `trials` draws for `key`: a Latin hypercube. The setting's range is cut into
/// `trials` equal slices and each trial gets a random point of its own slice, so that six trials
/// cover a learning rate's two decades evenly. The same quantiles serve every group of the grid
/// (common random numbers: PT and PT2 are searched at matching points of their ranges).
pub fn quantiles(seed: u64, key: &str, trials: usize) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed_of(&format!("{seed}/{key}")));
    let mut slices: Vec<usize> = (0..trials).collect();
    slices.shuffle(&mut rng);
    slices
        .into_iter()
        .map(|slice| (slice as f64 + rng.random::<f64>()) / trials as f64)
        .collect()
}

/// The `[search]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    pub strategy: Strategy,
    pub trials: usize,
    pub seed: u64,
    pub eta: usize,
    pub min_epochs: usize,
    /// A dev metric's name; None: each task's main metric.
    pub metric: Option<String>,
    pub minimize: bool,
    pub space: BTreeMap<String, Space>,
}

const SEARCH_KEYS: [&str; 8] = [
    "strategy",
    "trials",
    "seed",
    "eta",
    "min_epochs",
    "metric",
    "direction",
    "space",
];

fn positive(table: &toml::Table, key: &str, default: usize, at: &str) -> Result<usize> {
    match table.get(key) {
        None => Ok(default),
        Some(Value::Integer(n)) if *n > 0 => Ok(*n as usize),
        Some(other) => bail!("{at}: \"{key}\" must be a positive integer, found {other}"),
    }
}

/// A space table's entries, each checked to be a run setting the search may vary.
fn spaces(table: &toml::Table, at: &str) -> Result<BTreeMap<String, Space>> {
    let known = RunSettings::keys();
    let mut out = BTreeMap::new();
    for (key, value) in table {
        if !known.contains(key) {
            bail!(
                "{at}: unknown key \"{key}\" (expected one of: {})",
                known.join(", ")
            );
        }
        if key == "epochs" || key == "seed" {
            bail!("{at}: \"{key}\" cannot be searched (epochs is the search's budget, seeds are the grid's `seed` axis)");
        }
        out.insert(key.clone(), Space::parse(key, value, at)?);
    }
    Ok(out)
}

fn string_of(table: &toml::Table, key: &str, default: &str, at: &str) -> Result<String> {
    match table.get(key) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => bail!("{at}: \"{key}\" must be a string, found {other}"),
    }
}

impl SearchSpec {
    pub fn parse(table: &toml::Table, source: &str) -> Result<Self> {
        let at = format!("{source} [search]");
        for key in table.keys() {
            if !SEARCH_KEYS.contains(&key.as_str()) {
                bail!(
                    "{at}: unknown key \"{key}\" (expected {}, [search.space])",
                    SEARCH_KEYS[..7].join(", ")
                );
            }
        }
        let text = |key: &str, default: &str| string_of(table, key, default, &at);
        let (strategy, minimize) = (text("strategy", "asha")?, text("direction", "max")?);
        let strategy = match strategy.as_str() {
            "asha" => Strategy::Asha,
            "random" => Strategy::Random,
            other => bail!("{at}: strategy \"{other}\" (expected asha or random)"),
        };
        let minimize = match minimize.as_str() {
            "max" => false,
            "min" => true,
            other => bail!("{at}: direction \"{other}\" (expected max or min)"),
        };
        let trials = table
            .get("trials")
            .with_context(|| format!("{at}: needs \"trials\" (how many configurations to draw)"))
            .and_then(|_| positive(table, "trials", 1, &at))?;
        let eta = positive(table, "eta", 3, &at)?;
        if eta < 2 {
            bail!("{at}: \"eta\" must be at least 2 (the best 1/eta of a rung go on)");
        }
        let space = match table.get("space") {
            None => BTreeMap::new(),
            Some(Value::Table(t)) => spaces(t, &format!("{at} space"))?,
            Some(other) => bail!("{at}: \"space\" must be a table, found {other}"),
        };
        let metric = table
            .contains_key("metric")
            .then(|| text("metric", ""))
            .transpose()?;
        Ok(Self {
            strategy,
            trials,
            seed: match table.get("seed") {
                None => 1,
                Some(Value::Integer(n)) if *n >= 0 => *n as u64,
                Some(other) => {
                    bail!("{at}: \"seed\" must be a non-negative integer, found {other}")
                }
            },
            eta,
            min_epochs: positive(table, "min_epochs", 1, &at)?,
            metric,
            minimize,
            space,
        })
    }

    /// The epochs at which trials are compared: min, min·η, min·η², … and the run's `epochs`.
    pub fn rungs(&self, max_epochs: usize) -> Vec<usize> {
        let mut rungs = vec![];
        if self.strategy == Strategy::Asha {
            let mut epoch = self.min_epochs;
            while epoch < max_epochs {
                rungs.push(epoch);
                epoch *= self.eta;
            }
        }
        rungs.push(max_epochs);
        rungs
    }
}

/// One drawn configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub run: PlannedRun,
    /// The drawn values, by setting.
    pub values: Vec<(String, Value)>,
    /// Its settings before resolving (a seed re-run changes only the seed).
    pub settings: BTreeMap<String, Value>,
}

/// One combination of the grid's fixed axes (task, method, …) and the trials searched for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `task="sst2", method="pt2"`.
    pub name: String,
    pub at: String,
    pub space: BTreeMap<String, Space>,
    pub trials: Vec<Trial>,
    /// The grid's seeds: the best configuration runs at each; trials run at the first.
    pub seeds: Vec<Value>,
    pub max_epochs: usize,
    pub rungs: Vec<usize>,
}

impl Group {
    /// The runs that measure the best trial over the grid's seeds (the trial itself at the first).
    pub fn seed_runs(&self, best: &Trial) -> Result<Vec<PlannedRun>> {
        if self.seeds.is_empty() {
            return Ok(vec![best.run.clone()]);
        }
        self.seeds
            .iter()
            .map(|seed| {
                let mut settings = best.settings.clone();
                settings.insert("seed".into(), seed.clone());
                Ok(PlannedRun::new(resolve(&settings, &self.at)?))
            })
            .collect()
    }

    /// Run-epochs the search spends on its trials: each rung's survivors trained from the rung
    /// before (`eta` cuts the count at each).
    pub fn planned_epochs(&self, eta: usize) -> usize {
        planned_epochs(self.trials.len(), &self.rungs, eta)
    }

    /// Run-epochs of the seed re-runs other than the trial itself.
    pub fn rerun_epochs(&self) -> usize {
        self.seeds.len().saturating_sub(1) * self.max_epochs
    }
}

/// Run-epochs of successive halving: `trials` train to the first rung, each rung's best ⌊n/η⌋
/// on from there to the next.
pub fn planned_epochs(trials: usize, rungs: &[usize], eta: usize) -> usize {
    let (mut alive, mut before, mut total) = (trials, 0, 0);
    for &rung in rungs {
        total += alive * (rung - before);
        before = rung;
        alive = (alive / eta).max(1);
    }
    total
}

/// A search sweep: its spec and one group of trials per combination of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub spec: SearchSpec,
    pub groups: Vec<Group>,
}

impl Search {
    /// `root`'s `[search]` over the grid's `combos` (the `seed` axis held out: `grid_seeds`).
    pub fn new(
        root: &toml::Table,
        combos: Vec<Combo>,
        grid_seeds: Option<Value>,
        source: &str,
    ) -> Result<Self> {
        let table = root
            .get("search")
            .and_then(Value::as_table)
            .with_context(|| format!("{source}: [search] must be a table"))?;
        let spec = SearchSpec::parse(table, source)?;
        let seeds = match grid_seeds {
            None => vec![],
            Some(Value::Array(seeds)) => seeds,
            Some(other) => bail!("{source} [grid]: \"seed\" must be a list, found {other}"),
        };
        let groups = combos
            .into_iter()
            .map(|combo| group(&spec, combo, &seeds))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { spec, groups })
    }

    /// Every trial's run, group by group.
    pub fn trial_runs(&self) -> Vec<PlannedRun> {
        self.groups
            .iter()
            .flat_map(|g| g.trials.iter().map(|t| t.run.clone()))
            .collect()
    }
}

/// The trials of one combination: the space (the search's, narrowed by matching overrides), its
/// draws, each resolved into a run; trials that resolve to the same run are one.
fn group(spec: &SearchSpec, combo: Combo, seeds: &[Value]) -> Result<Group> {
    let mut space = spec.space.clone();
    space.extend(spaces(
        &combo.search,
        &format!("{} [[override]] search", combo.at),
    )?);
    if space.is_empty() {
        bail!(
            "{}: nothing to search (give [search.space] or an override's `search`)",
            combo.at
        );
    }
    let mut base = combo.settings.clone();
    if let Some(first) = seeds.first() {
        base.insert("seed".into(), first.clone());
    }
    let draws: BTreeMap<&String, Vec<f64>> = space
        .keys()
        .map(|key| (key, quantiles(spec.seed, key, spec.trials)))
        .collect();
    let drawn: Vec<Vec<(String, Value)>> = (0..spec.trials)
        .map(|i| {
            let value = |(key, s): (&String, &Space)| (key.clone(), s.at(draws[key][i]));
            space.iter().map(value).collect()
        })
        .collect();
    let mut trials: Vec<Trial> = vec![];
    for (i, values) in drawn.into_iter().enumerate() {
        let mut settings = base.clone();
        settings.extend(values.iter().cloned());
        let run = PlannedRun::new(resolve(
            &settings,
            &format!("{} trial {}", combo.at, i + 1),
        )?);
        if !trials.iter().any(|t| t.run.id == run.id) {
            trials.push(Trial {
                run,
                values,
                settings,
            });
        }
    }
    let max_epochs = trials[0].run.settings.epochs;
    if spec.strategy == Strategy::Asha && spec.min_epochs > max_epochs {
        bail!(
            "{}: min_epochs {} is above the runs' epochs {max_epochs}",
            combo.at,
            spec.min_epochs
        );
    }
    Ok(Group {
        name: combo.described.join(", "),
        at: combo.at,
        space,
        trials,
        seeds: seeds.to_vec(),
        max_epochs,
        rungs: spec.rungs(max_epochs),
    })
}

/// What a trial's run dir says: how many epochs it trained, its searched metric at each, and
/// its status (none while it may train on).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub epochs: usize,
    pub scores: Vec<f64>,
    pub status: Option<RunStatus>,
}

impl Observed {
    /// Can it train no further (finished, failed or diverged)? A pruned trial can, if promoted.
    pub fn ended(&self) -> bool {
        self.status.is_some_and(|s| s != RunStatus::Pruned)
    }

    /// The best score over its first `epochs` epochs (how ptv2 scores a run: its best dev epoch),
    /// higher is better (`minimize` negates); a trial without one ranks last.
    fn score_at(&self, epochs: usize, minimize: bool) -> f64 {
        let sign = if minimize { -1.0 } else { 1.0 };
        self.scores
            .iter()
            .take(epochs)
            .map(|s| sign * s)
            .filter(|s| s.is_finite())
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// What a trial does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Train on until this many epochs (a rung; the last rung is the end of the run).
    TrainTo(usize),
    /// It reached the current rung; the others have not yet.
    Wait,
    /// Stopped at the rung of this many epochs: not among the best 1/η there.
    Pruned(usize),
    /// It reached the last rung.
    Done,
}

/// The verdict of every trial of a group and, once the last rung is complete, the best trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdicts: Vec<Verdict>,
    pub best: Option<usize>,
}

/// Successive halving over `observed` (trials in their order): rung by rung, every trial still
/// in must reach the rung; then the best ⌊n/η⌋ (at least one; ties to the earlier trial) go on.
pub fn decide(rungs: &[usize], eta: usize, observed: &[Observed], minimize: bool) -> Decision {
    let mut verdicts = vec![Verdict::Wait; observed.len()];
    let mut alive: Vec<usize> = (0..observed.len()).collect();
    for (k, &rung) in rungs.iter().enumerate() {
        let behind: Vec<usize> = alive
            .iter()
            .copied()
            .filter(|&i| !observed[i].ended() && observed[i].epochs < rung)
            .collect();
        if !behind.is_empty() {
            for i in behind {
                verdicts[i] = Verdict::TrainTo(rung);
            }
            return Decision {
                verdicts,
                best: None,
            };
        }
        let mut ranked = alive.clone();
        ranked.sort_by(|&a, &b| {
            let (sa, sb) = (
                observed[a].score_at(rung, minimize),
                observed[b].score_at(rung, minimize),
            );
            sb.total_cmp(&sa).then(a.cmp(&b))
        });
        if k + 1 == rungs.len() {
            for &i in &alive {
                verdicts[i] = Verdict::Done;
            }
            let best = ranked
                .first()
                .copied()
                .filter(|&i| observed[i].score_at(rung, minimize).is_finite());
            return Decision { verdicts, best };
        }
        let keep = (alive.len() / eta).max(1);
        for &i in &ranked[keep..] {
            verdicts[i] = Verdict::Pruned(rung);
        }
        alive = ranked[..keep].to_vec();
        alive.sort();
    }
    Decision {
        verdicts,
        best: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(scores: &[f64]) -> Observed {
        Observed {
            epochs: scores.len(),
            scores: scores.to_vec(),
            status: None,
        }
    }

    /// Nine trials, η = 3, rungs at 1, 3 and 9 epochs: everyone trains one epoch; the best three
    /// at epoch 1 go on to 3; the best of those at 3 goes on to 9 and is the search's best.
    #[test]
    fn successive_halving_on_a_worked_example() {
        let rungs = SearchSpec {
            strategy: Strategy::Asha,
            trials: 9,
            seed: 1,
            eta: 3,
            min_epochs: 1,
            metric: None,
            minimize: false,
            space: BTreeMap::new(),
        }
        .rungs(9);
        assert_eq!(rungs, vec![1, 3, 9]);
        let start = vec![Observed::default(); 9];
        let d = decide(&rungs, 3, &start, false);
        assert_eq!(d.verdicts, vec![Verdict::TrainTo(1); 9]);
        // Epoch-1 scores: trials 2, 5 and 7 lead (7 and 8 tie at 0.60: the earlier one goes on).
        let first = [0.50, 0.40, 0.70, 0.30, 0.20, 0.65, 0.10, 0.60, 0.60];
        let mut seen_now: Vec<Observed> = first.iter().map(|s| seen(&[*s])).collect();
        // Trial 4 diverged in its first epoch: it ranks last, whatever its partial record says.
        seen_now[4] = Observed {
            epochs: 0,
            scores: vec![],
            status: Some(RunStatus::Diverged),
        };
        let d = decide(&rungs, 3, &seen_now, false);
        let promoted: Vec<usize> = (0..9)
            .filter(|&i| d.verdicts[i] == Verdict::TrainTo(3))
            .collect();
        assert_eq!(promoted, vec![2, 5, 7]);
        assert_eq!(d.verdicts[8], Verdict::Pruned(1));
        assert_eq!(d.verdicts[4], Verdict::Pruned(1));
        // Rung 3 half reached: the others wait.
        seen_now[2] = seen(&[0.70, 0.71, 0.72]);
        let d = decide(&rungs, 3, &seen_now, false);
        assert_eq!(
            (d.verdicts[2], d.verdicts[5]),
            (Verdict::Wait, Verdict::TrainTo(3))
        );
        // Trial 5's best epoch is its second (0.80): a rung compares best-so-far scores.
        seen_now[5] = seen(&[0.65, 0.80, 0.75]);
        seen_now[7] = seen(&[0.60, 0.62, 0.64]);
        let d = decide(&rungs, 3, &seen_now, false);
        assert_eq!(d.verdicts[5], Verdict::TrainTo(9));
        assert_eq!(
            (d.verdicts[2], d.verdicts[7]),
            (Verdict::Pruned(3), Verdict::Pruned(3))
        );
        assert_eq!(d.best, None);
        seen_now[5] = Observed {
            status: Some(RunStatus::Ok),
            ..seen(&[0.65, 0.80, 0.75, 0.81, 0.82, 0.8, 0.8, 0.8, 0.8])
        };
        let d = decide(&rungs, 3, &seen_now, false);
        assert_eq!((d.verdicts[5], d.best), (Verdict::Done, Some(5)));
        // 9 trials × 1 epoch, 3 × 2 more, 1 × 6 more: 21 run-epochs against a grid's 81.
        assert_eq!(planned_epochs(9, &rungs, 3), 9 + 3 * 2 + 6);
    }

    #[test]
    fn lower_is_better_turns_the_order_around() {
        let first = [0.50, 0.40, 0.70, 0.30, 0.20, 0.65, 0.10, 0.60, 0.60];
        let seen_now: Vec<Observed> = first.iter().map(|s| seen(&[*s])).collect();
        let d = decide(&[1, 3], 3, &seen_now, true);
        let promoted: Vec<usize> = (0..9)
            .filter(|&i| d.verdicts[i] == Verdict::TrainTo(3))
            .collect();
        assert_eq!(promoted, vec![3, 4, 6]);
    }

    #[test]
    fn latin_hypercube_draws_cover_every_slice_once_and_repeat_for_a_seed() {
        let u = quantiles(7, "lr", 6);
        let mut slices: Vec<usize> = u.iter().map(|q| (q * 6.0).floor() as usize).collect();
        slices.sort();
        assert_eq!(slices, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(u, quantiles(7, "lr", 6));
        assert_ne!(u, quantiles(8, "lr", 6));
        assert_ne!(u, quantiles(7, "prompt_len", 6));
        let lr = Space::LogUniform(1e-3, 1e-1);
        assert_eq!(lr.at(0.0), Value::Float(1e-3));
        assert_eq!(lr.at(0.5), Value::Float(0.01));
        assert_eq!(lr.at(0.25), Value::Float(0.00316));
        let lengths = Space::Choice(vec![Value::Integer(4), Value::Integer(16)]);
        assert_eq!(
            (lengths.at(0.49), lengths.at(0.5)),
            (Value::Integer(4), Value::Integer(16))
        );
        assert_eq!(Space::IntUniform(1, 3).at(0.99), Value::Integer(3));
    }

    #[test]
    fn bad_spaces_are_named() {
        let parse = |text: &str| {
            let table: toml::Table = toml::from_str(text).unwrap();
            SearchSpec::parse(&table, "s.toml").map_err(|e| e.to_string())
        };
        let err = parse("trials = 4\nspace = { lr = { log_uniform = [0.0, 1.0] } }").unwrap_err();
        assert!(err.contains("\"lr\"") && err.contains("lo > 0"), "{err}");
        let err = parse("trials = 4\nspace = { lr = { normal = [1, 2] } }").unwrap_err();
        assert!(
            err.contains("s.toml [search] space: \"lr\"") && err.contains("log_uniform"),
            "{err}"
        );
        let err = parse("trials = 4\nspace = { epochs = { choice = [1, 2] } }").unwrap_err();
        assert!(err.contains("\"epochs\" cannot be searched"), "{err}");
        let err = parse("space = { lr = { choice = [0.1] } }").unwrap_err();
        assert!(err.contains("needs \"trials\""), "{err}");
        let err = parse("trials = 4\nstrategy = \"bayes\"").unwrap_err();
        assert!(
            err.contains("strategy \"bayes\" (expected asha or random)"),
            "{err}"
        );
        let err = parse("trials = 4\ntrails = 3").unwrap_err();
        assert!(err.contains("unknown key \"trails\""), "{err}");
    }
}
