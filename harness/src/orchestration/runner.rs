//! Running a sweep: each planned run goes to `reports/NAME/runs/<id>/`; a run is done once its
//! `status.json` exists, so re-running a finished sweep does nothing and an interrupted one resumes.
//! A failed or diverged run is recorded as such, with its error, and the sweep goes on.
//! Scale-out: `--shard i/n` runs every n-th run; `--workers N` starts N local shard processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use clap::ValueEnum;

use crate::orchestration::claims::Claim;
use crate::records::events::{self, Event, Talk};
use crate::records::run_dir::{
    PlannedRun, RunDir, RunStatus, StatusRecord, SweepDir, CHECKPOINT_FILE,
};
use crate::run::setup::RunEnv;
use crate::run::train::train;

/// Where a sweep writes and how its runs execute.
#[derive(Debug, Clone)]
pub struct SweepEnv {
    pub name: String,
    /// `reports/NAME`
    pub dir: SweepDir,
    pub cache: PathBuf,
    pub device: String,
    pub data_dir: PathBuf,
    /// Keep each run's best checkpoint (FT checkpoints are the whole model).
    pub keep_checkpoints: bool,
}

/// The command line of a worker process: `ptv2 sweep` of one shard, no report, no bars. Local
/// workers and Slurm array tasks are started with it.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub exe: PathBuf,
    /// The sweep argument (a name, or a path to a TOML file).
    pub sweep: String,
    pub experiments: PathBuf,
    pub reports: PathBuf,
    pub data_dir: PathBuf,
    pub cache: PathBuf,
    pub device: String,
    pub keep_checkpoints: bool,
    /// What the workers say on stdout (`events`): lines or JSON off a terminal.
    pub talk: Talk,
}

impl WorkerCommand {
    /// The arguments after the executable, for shard `shard` (`i/n`, or a shell expression).
    pub fn args(&self, shard: &str) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        let mut args = vec!["sweep".to_string(), self.sweep.clone()];
        args.extend(["--experiments".into(), path(&self.experiments)]);
        args.extend(["--reports".into(), path(&self.reports)]);
        args.extend(["--data".into(), path(&self.data_dir)]);
        args.extend(["--cache".into(), path(&self.cache)]);
        args.extend(["--device".into(), self.device.clone()]);
        if self.keep_checkpoints {
            args.push("--keep-checkpoints".into());
        }
        args.extend([
            "--shard".into(),
            shard.into(),
            "--no-report".into(),
            "--quiet".into(),
            "--talk".into(),
            self.talk
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().into()),
        ]);
        args
    }
}

fn overall_bar(multi: &MultiProgress, total: usize, done: usize) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(total as u64));
    bar.set_style(
        ProgressStyle::with_template("runs [{bar:30}] {pos}/{len} done, {elapsed}, {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(done as u64);
    bar
}

/// The whole sweep's remaining time, from the runs this invocation finished so far (runs done
/// before it, e.g. when resuming, do not count as instant).
pub struct SweepEta {
    started: std::time::Instant,
    done_before: usize,
    total: usize,
}

impl SweepEta {
    pub fn new(total: usize, done_before: usize) -> Self {
        Self {
            started: std::time::Instant::now(),
            done_before,
            total,
        }
    }

    /// Seconds left at this pace; None before a run finished here.
    pub fn seconds_left(&self, done: usize) -> Option<f64> {
        let finished_here = done.saturating_sub(self.done_before);
        if finished_here == 0 {
            return None;
        }
        let per_run = self.started.elapsed().as_secs_f64() / finished_here as f64;
        Some(per_run * self.total.saturating_sub(done) as f64)
    }

    pub fn message(&self, done: usize) -> String {
        match self.seconds_left(done) {
            None => "sweep ETA after the first run".into(),
            Some(left) => format!("sweep {}", events::eta_text(left)),
        }
    }
}

/// Train one claimed run and record how it ended (its status file; the checkpoint removed unless
/// kept). An interruption is returned without a status, so the run stays pending and resumes; so
/// is a search's stop at a rung (`stop_after`), with its state kept to go on from.
pub fn run_one(
    run: &PlannedRun,
    dir: &RunDir,
    env: &SweepEnv,
    multi: &MultiProgress,
    stop_after: Option<usize>,
) -> Result<()> {
    let run_env = RunEnv {
        cache: env.cache.clone(),
        device: env.device.clone(),
        data_dir: env.data_dir.clone(),
        out: dir.path().to_path_buf(),
        progress: Some(multi.clone()),
        verbose: false,
        stop_after,
    };
    let result = train(&run.settings, &run_env);
    if let Err(err) = &result {
        if crate::records::signals::interrupted(err) {
            return Err(result.unwrap_err());
        }
    }
    let at_rung = matches!(&result, Ok(m) if m.epochs.len() < run.settings.epochs);
    if at_rung {
        return Ok(());
    }
    let status = StatusRecord {
        run_id: run.id.clone(),
        status: RunStatus::of(&result),
        error: result.err().map(|err| format!("{err:#}")),
    };
    if let Some(message) = &status.error {
        multi.suspend(|| {
            let (task, method) = (&run.settings.task, &run.settings.tuning.method);
            eprintln!(
                "run {} ({task} {method}) {:?}: {message}",
                run.id, status.status
            )
        });
    }
    end_run(dir, env, &status)
}

/// Record a run's end: its status last, after its checkpoint (unless kept) and saved state go.
pub fn end_run(dir: &RunDir, env: &SweepEnv, status: &StatusRecord) -> Result<()> {
    if !env.keep_checkpoints {
        let _ = std::fs::remove_file(dir.file(CHECKPOINT_FILE));
    }
    crate::run::resume::clear(dir);
    dir.write_status(status)
}

/// Run every pending run of `runs` (this shard's of the sweep's `all`) in this process, one
/// after the other, saying each start, epoch and finish (`events`).
pub fn run_all(
    all: &[PlannedRun],
    runs: &[PlannedRun],
    env: &SweepEnv,
    show_progress: bool,
) -> Result<()> {
    let todo = env.dir.pending(runs);
    let multi = if show_progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    };
    let overall = overall_bar(&multi, runs.len(), runs.len() - todo.len());
    let eta = SweepEta::new(runs.len(), runs.len() - todo.len());
    let sweep_eta = SweepEta::new(all.len(), env.dir.done(all));
    for run in todo {
        overall.set_message(format!(
            "{}; now {} {} {}",
            eta.message(overall.position() as usize),
            run.settings.task,
            run.settings.tuning.method,
            run.id
        ));
        let dir = env.dir.run(&run.id);
        // Another process may hold it, or have finished it since `pending` looked.
        let Some(_claim) = Claim::take(dir.path())? else {
            continue;
        };
        if dir.status().is_some() {
            continue;
        }
        say_started(run, all, env);
        events::set_current_run(Some(&run.id));
        let result = run_one(run, &dir, env, &multi, None);
        events::set_current_run(None);
        result?;
        say_finished(run, &dir, all, env, &sweep_eta);
        overall.inc(1);
    }
    overall.finish_and_clear();
    Ok(())
}

fn say_started(run: &PlannedRun, all: &[PlannedRun], env: &SweepEnv) {
    events::emit(&Event::RunStarted {
        run_id: &run.id,
        task: &run.settings.task,
        method: run.settings.tuning.method.name(),
        seed: run.settings.seed,
        done: env.dir.done(all),
        total: all.len(),
    });
}

/// The run's status and best score, with the sweep's count of finished runs and its ETA.
fn say_finished(
    run: &PlannedRun,
    dir: &RunDir,
    all: &[PlannedRun],
    env: &SweepEnv,
    eta: &SweepEta,
) {
    let done = env.dir.done(all);
    let status = dir.status().map_or("unknown", |s| s.status.name());
    let metrics = dir.metrics().ok();
    let best = metrics.as_ref().and_then(|m| m.best_dev.first());
    events::emit(&Event::RunFinished {
        run_id: &run.id,
        task: &run.settings.task,
        method: run.settings.tuning.method.name(),
        seed: run.settings.seed,
        status,
        metric: best.map(|(metric, _)| metric.as_str()),
        score: best.map(|(_, score)| *score),
        seconds: metrics.as_ref().map(|m| m.wall_seconds),
        done,
        total: all.len(),
        eta_seconds: eta.seconds_left(done),
    });
}

/// Start `workers` processes of this binary, each running one shard, and wait for all of them,
/// drawing the overall progress from the status files they write.
pub fn run_workers(
    runs: &[PlannedRun],
    env: &SweepEnv,
    workers: usize,
    command: &WorkerCommand,
) -> Result<()> {
    // Split the cores between the workers (unless RAYON_NUM_THREADS says otherwise): N workers each
    // using every core oversubscribe the machine.
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / workers).max(1).to_string()
    });
    let mut children = vec![];
    for k in 0..workers {
        let child = Command::new(&command.exe)
            .env("RAYON_NUM_THREADS", &threads)
            .args(command.args(&format!("{k}/{workers}")))
            .spawn()
            .with_context(|| format!("cannot start worker {k}"))?;
        children.push(child);
    }
    let multi = MultiProgress::new();
    let done_before = env.dir.done(runs);
    let overall = overall_bar(&multi, runs.len(), done_before);
    let eta = SweepEta::new(runs.len(), done_before);
    let mut failed = vec![];
    let mut forwarded = false;
    while !children.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
        if crate::records::signals::stop_requested() && !forwarded {
            // Each worker stops at a safe point; their runs resume when the sweep runs again.
            for child in &children {
                // SAFETY: sends SIGTERM to a child process this function started.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            }
            forwarded = true;
        }
        let done = env.dir.done(runs);
        overall.set_position(done as u64);
        overall.set_message(format!("{workers} workers, {}", eta.message(done)));
        let mut still_running = vec![];
        for mut child in children {
            match child.try_wait()? {
                Some(status) if !status.success() => failed.push(status),
                Some(_) => {}
                None => still_running.push(child),
            }
        }
        children = still_running;
    }
    overall.finish_and_clear();
    if !failed.is_empty() {
        bail!(
            "{} of {workers} workers exited with an error: {failed:?}",
            failed.len()
        );
    }
    Ok(())
}
