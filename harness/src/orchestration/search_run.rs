//! Running a search (`search.rs`) on a sweep's reports dir: look at every trial's run dir, decide,
//! train the one piece of work the decision asks for next (claimed as runs are), look again.
//! Every process of a search — the only one, local workers, Slurm array tasks — runs this loop;
//! they share the work through claims and reach the same decisions from the same files. A process
//! that finds every piece claimed by others waits for them.

use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::MultiProgress;

use crate::orchestration::claims::Claim;
use crate::orchestration::runner::{end_run, run_one, SweepEnv, SweepEta};
use crate::orchestration::search::{
    decide, Decision, Group, Observed, Search, Space, Strategy, Trial, Verdict,
};
use crate::records::events::{self, Event};
use crate::records::run_dir::{PlannedRun, RunDir, RunStatus, StatusRecord, SweepDir};
use crate::records::search_record::{settings_text, GroupRecord, SearchRecord, TrialRecord};
use crate::records::signals::{stop_requested, Interrupted};

/// What a run dir says about a trial; `metric` None: the task's main metric.
pub fn observe(dir: &RunDir, metric: Option<&str>) -> Result<Observed> {
    let status = dir.status().map(|s| s.status);
    let Ok(metrics) = dir.metrics() else {
        return Ok(Observed {
            status,
            ..Observed::default()
        });
    };
    let name = metric.unwrap_or(&metrics.main_metric);
    let scores = metrics
        .epochs
        .iter()
        .map(|e| {
            e.dev
                .iter()
                .find(|(m, _)| m == name)
                .map(|(_, v)| *v)
                .with_context(|| {
                    let known: Vec<&str> = e.dev.iter().map(|(m, _)| m.as_str()).collect();
                    format!(
                        "[search] metric \"{name}\": run {} has dev metrics {}",
                        dir.path().display(),
                        known.join(", ")
                    )
                })
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(Observed {
        epochs: metrics.epochs.len(),
        scores,
        status,
    })
}

/// Where one group of trials stands.
pub struct GroupState<'a> {
    pub group: &'a Group,
    pub observed: Vec<Observed>,
    pub decision: Decision,
    /// The best configuration's runs over the grid's seeds, once the search found it.
    pub seed_runs: Vec<PlannedRun>,
}

impl GroupState<'_> {
    pub fn best(&self) -> Option<&Trial> {
        self.decision.best.map(|i| &self.group.trials[i])
    }
}

/// Every group's state, from its trials' run dirs.
pub fn survey<'a>(search: &'a Search, sweep: &SweepDir) -> Result<Vec<GroupState<'a>>> {
    let metric = search.spec.metric.as_deref();
    search
        .groups
        .iter()
        .map(|group| {
            let observed = group
                .trials
                .iter()
                .map(|t| observe(&sweep.run(&t.run.id), metric))
                .collect::<Result<Vec<_>>>()?;
            let decision = decide(
                &group.rungs,
                search.spec.eta,
                &observed,
                search.spec.minimize,
            );
            let seed_runs = match decision.best {
                Some(best) => group.seed_runs(&group.trials[best])?,
                None => vec![],
            };
            Ok(GroupState {
                group,
                observed,
                decision,
                seed_runs,
            })
        })
        .collect()
}

/// The runs that measure a search's result: each group's best configuration at every seed, for
/// the groups decided so far (what the summary tables and `ptv2 check` read).
pub fn result_runs(search: &Search, sweep: &SweepDir) -> Result<Vec<PlannedRun>> {
    let mut runs: Vec<PlannedRun> = vec![];
    for state in survey(search, sweep)? {
        for run in state.seed_runs {
            if !runs.iter().any(|r| r.id == run.id) {
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

/// One piece of work: train `run` up to `stop_after` epochs (a rung), or to its end.
#[derive(Debug, Clone)]
pub struct Work {
    pub run: PlannedRun,
    pub stop_after: Option<usize>,
    /// The drawn settings, for what it says.
    pub values: String,
    /// It was pruned under other search settings: its status goes, and it trains from the start
    /// (its saved state went when it was pruned), to the same curve.
    pub revive: bool,
}

fn values_text(trial: &Trial) -> String {
    settings_text(&trial.values)
}

/// What is left to train, and the trials to mark pruned now.
pub fn work(states: &[GroupState], sweep: &SweepDir) -> (Vec<Work>, Vec<(PlannedRun, usize)>) {
    let (mut work, mut prune) = (vec![], vec![]);
    for state in states {
        let group = state.group;
        let trials = group.trials.iter().zip(&state.observed);
        for ((trial, observed), verdict) in trials.zip(&state.decision.verdicts) {
            let status = observed.status;
            let open = status.is_none();
            match *verdict {
                // A trial pruned under other search settings (a changed eta) may go on now.
                Verdict::TrainTo(epochs) if open || status == Some(RunStatus::Pruned) => {
                    work.push(Work {
                        run: trial.run.clone(),
                        stop_after: (epochs < group.max_epochs).then_some(epochs),
                        values: values_text(trial),
                        revive: !open,
                    })
                }
                Verdict::Pruned(rung) if open => prune.push((trial.run.clone(), rung)),
                _ => {}
            }
        }
        let best = state.best().map(values_text).unwrap_or_default();
        for run in &state.seed_runs {
            if sweep.run(&run.id).status().is_none() {
                work.push(Work {
                    run: run.clone(),
                    stop_after: None,
                    values: format!("{best} seed={}", run.settings.seed),
                    revive: false,
                });
            }
        }
    }
    (work, prune)
}

/// Run-epochs trained so far and planned, over every group (trials and seed runs).
pub fn epochs_done_and_planned(
    search: &Search,
    states: &[GroupState],
    sweep: &SweepDir,
) -> (usize, usize) {
    let mut done = 0;
    let mut planned = 0;
    for state in states {
        planned += state.group.planned_epochs(search.spec.eta) + state.group.rerun_epochs();
        done += state.observed.iter().map(|o| o.epochs).sum::<usize>();
        let trial_ids: Vec<&str> = state
            .group
            .trials
            .iter()
            .map(|t| t.run.id.as_str())
            .collect();
        for run in state
            .seed_runs
            .iter()
            .filter(|r| !trial_ids.contains(&r.id.as_str()))
        {
            done += observe(&sweep.run(&run.id), None).map_or(0, |o| o.epochs);
        }
    }
    (done, planned)
}

/// Run the search until every group has its best configuration measured at every seed. `shard`
/// only staggers where this process starts looking for work.
pub fn run_search(
    search: &Search,
    env: &SweepEnv,
    shard: Option<(usize, usize)>,
    show_progress: bool,
) -> Result<()> {
    let multi = if show_progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    };
    let states = survey(search, &env.dir)?;
    let (done_before, planned) = epochs_done_and_planned(search, &states, &env.dir);
    let eta = SweepEta::new(planned, done_before);
    loop {
        let states = survey(search, &env.dir)?;
        let (work, prune) = work(&states, &env.dir);
        for (run, rung) in &prune {
            mark_pruned(run, *rung, env)?;
        }
        if work.is_empty() {
            return Ok(());
        }
        let start = shard.map_or(0, |(i, _)| i) % work.len();
        let mut trained = false;
        for item in work.iter().cycle().skip(start).take(work.len()) {
            if train_piece(item, search, env, &multi, &eta)? {
                trained = true;
                break;
            }
        }
        if !trained {
            if stop_requested() {
                return Err(Interrupted {
                    signal_seen_at_epoch: 0,
                }
                .into());
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

/// Claim and train one piece of work; false if another process holds it or has done it since
/// the survey.
fn train_piece(
    item: &Work,
    search: &Search,
    env: &SweepEnv,
    multi: &MultiProgress,
    eta: &SweepEta,
) -> Result<bool> {
    let dir = env.dir.run(&item.run.id);
    let Some(_claim) = Claim::take(dir.path())? else {
        return Ok(false);
    };
    if item.revive && dir.status().is_some_and(|s| s.status == RunStatus::Pruned) {
        let _ = std::fs::remove_file(dir.file(crate::records::run_dir::STATUS_FILE));
    }
    let epochs = || observe(&dir, None).map_or(0, |o| o.epochs);
    if dir.status().is_some() || item.stop_after.is_some_and(|e| epochs() >= e) {
        return Ok(false);
    }
    let to = item
        .stop_after
        .map_or("to the end".into(), |e| format!("to epoch {e}"));
    say(item, None, &format!("training {to}"), search, env, eta);
    events::set_current_run(Some(&item.run.id));
    let result = run_one(&item.run, &dir, env, multi, item.stop_after);
    events::set_current_run(None);
    result?;
    let reached = match dir.status() {
        Some(status) => status.status.name().to_string(),
        None => format!("reached epoch {}", epochs()),
    };
    say(item, Some(&dir), &reached, search, env, eta);
    Ok(true)
}

/// A trial left at its rung: its curve stays, its saved state and checkpoint go.
fn mark_pruned(run: &PlannedRun, rung: usize, env: &SweepEnv) -> Result<()> {
    let dir = env.dir.run(&run.id);
    let Some(_claim) = Claim::take(dir.path())? else {
        return Ok(());
    };
    if dir.status().is_some() {
        return Ok(());
    }
    let status = StatusRecord {
        run_id: run.id.clone(),
        status: RunStatus::Pruned,
        error: Some(format!(
            "stopped at the rung of epoch {rung}: not among the best of its rung"
        )),
    };
    end_run(&dir, env, &status)
}

/// A line (or JSON event) about `item`; `scored` names the dir whose best dev score to say.
fn say(
    item: &Work,
    scored: Option<&RunDir>,
    what: &str,
    search: &Search,
    env: &SweepEnv,
    eta: &SweepEta,
) {
    let (done, total) = survey(search, &env.dir)
        .map(|states| epochs_done_and_planned(search, &states, &env.dir))
        .unwrap_or((0, 0));
    let best = scored
        .and_then(|dir| dir.metrics().ok())
        .and_then(|m| m.best_dev.first().cloned());
    let s = &item.run.settings;
    events::emit(&Event::Trial {
        run_id: &item.run.id,
        task: &s.task,
        method: s.tuning.method.name(),
        values: &item.values,
        what,
        metric: best.as_ref().map(|(m, _)| m.as_str()),
        score: best.as_ref().map(|(_, v)| *v),
        done,
        total,
        eta_seconds: eta.seconds_left(done),
    });
}

fn space_text(group: &Group) -> String {
    let parts: Vec<String> = group
        .space
        .iter()
        .map(|(key, space)| match space {
            Space::LogUniform(lo, hi) => format!("{key} log-uniform in [{lo}, {hi}]"),
            Space::Uniform(lo, hi) => format!("{key} uniform in [{lo}, {hi}]"),
            Space::IntUniform(lo, hi) => format!("{key} integer in [{lo}, {hi}]"),
            Space::Choice(options) => {
                let options: Vec<String> = options.iter().map(|v| v.to_string()).collect();
                format!("{key} one of {}", options.join(", "))
            }
        })
        .collect();
    parts.join("; ")
}

/// A trial's state in words: where it is, or what happens to it next.
fn state_text(observed: &Observed, verdict: Verdict) -> String {
    match (observed.status, verdict) {
        (Some(RunStatus::Pruned), _) | (None, Verdict::Pruned(_)) => {
            format!("pruned after epoch {}", observed.epochs)
        }
        (Some(status), _) => status.name().to_string(),
        (None, Verdict::TrainTo(e)) if observed.epochs == 0 => format!("pending, to epoch {e}"),
        (None, Verdict::TrainTo(e)) => format!("at epoch {}, on to epoch {e}", observed.epochs),
        (None, _) => format!("at epoch {}, waiting for its rung", observed.epochs),
    }
}

fn strategy_text(search: &Search) -> String {
    match search.spec.strategy {
        Strategy::Asha => format!("successive halving (asha), eta {}", search.spec.eta),
        Strategy::Random => "random".into(),
    }
}

fn trial_records(state: &GroupState) -> Vec<TrialRecord> {
    let trials = state.group.trials.iter().zip(&state.observed);
    trials
        .zip(&state.decision.verdicts)
        .map(|((trial, observed), verdict)| TrialRecord {
            run_id: trial.run.id.clone(),
            values: trial
                .values
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            curve: observed.scores.clone(),
            state: state_text(observed, *verdict),
        })
        .collect()
}

/// What the search found so far, for its report and `search.json`.
pub fn record(search: &Search, sweep: &SweepDir) -> Result<SearchRecord> {
    let groups = survey(search, sweep)?
        .into_iter()
        .map(|state| {
            let g = state.group;
            let trials = trial_records(&state);
            let settings = &g.trials[0].run.settings;
            let main = g
                .trials
                .iter()
                .find_map(|t| sweep.run(&t.run.id).metrics().ok())
                .map(|m| m.main_metric);
            GroupRecord {
                metric: search
                    .spec
                    .metric
                    .clone()
                    .or(main)
                    .unwrap_or_else(|| "score".into()),
                name: g.name.clone(),
                task: settings.task.clone(),
                method: settings.tuning.method,
                searched: g
                    .space
                    .iter()
                    .map(|(k, s)| (k.clone(), s.is_log()))
                    .collect(),
                rungs: g.rungs.clone(),
                max_epochs: g.max_epochs,
                trials,
                best: state.decision.best,
                spent_epochs: state.observed.iter().map(|o| o.epochs).sum(),
                spent_seconds: g
                    .trials
                    .iter()
                    .filter_map(|t| sweep.run(&t.run.id).metrics().ok())
                    .map(|m| m.wall_seconds)
                    .sum(),
                full_epochs: g.trials.len() * g.max_epochs,
                seed_runs: state.seed_runs.iter().map(|r| r.id.clone()).collect(),
            }
        })
        .collect();
    Ok(SearchRecord {
        strategy: strategy_text(search),
        trials: search.spec.trials,
        seed: search.spec.seed,
        metric: search.spec.metric.clone(),
        minimize: search.spec.minimize,
        groups,
    })
}

/// Where the best configuration runs: `seed 1`, `seeds 1, 2, 3`.
fn seeds_text(seeds: &[toml::Value]) -> String {
    let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    match seeds.len() {
        0 => "its own seed".to_string(),
        1 => format!("seed {}", seeds[0]),
        _ => format!("seeds {}", seeds.join(", ")),
    }
}

/// `--dry-run` of a search: the strategy, each group's space, rungs, cost against a grid, and
/// every trial's drawn settings and state.
pub fn describe(search: &Search, sweep: &SweepDir) -> Result<String> {
    use std::fmt::Write;
    let spec = &search.spec;
    let mut out = String::new();
    let metric = spec.metric.as_deref().unwrap_or("each task's main metric");
    let direction = if spec.minimize { "lowest" } else { "highest" };
    writeln!(
        out,
        "search: {}, {} trials per group (sampler seed {}); the {direction} dev score ({metric}) wins",
        strategy_text(search),
        spec.trials,
        spec.seed
    )?;
    for state in survey(search, sweep)? {
        let g = state.group;
        let rungs: Vec<String> = g.rungs.iter().map(|r| r.to_string()).collect();
        writeln!(
            out,
            "\n{}: {}",
            if g.name.is_empty() { "all" } else { &g.name },
            space_text(g)
        )?;
        writeln!(
            out,
            "  {} trials, rungs at epochs {}: {} run-epochs against {} for every trial trained to the end; then the best at {}",
            g.trials.len(),
            rungs.join(", "),
            g.planned_epochs(spec.eta),
            g.trials.len() * g.max_epochs,
            seeds_text(&g.seeds)
        )?;
        for ((trial, observed), verdict) in g
            .trials
            .iter()
            .zip(&state.observed)
            .zip(&state.decision.verdicts)
        {
            let best = if state.best().is_some_and(|b| b.run.id == trial.run.id) {
                "  ← best"
            } else {
                ""
            };
            writeln!(
                out,
                "  {}  {:<40} [{}]{best}",
                trial.run.id,
                values_text(trial),
                state_text(observed, *verdict)
            )?;
        }
    }
    Ok(out)
}
