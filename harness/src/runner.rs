//! Running a sweep: each planned run goes to `reports/NAME/runs/<id>/`; a run is done once its
//! `status.json` exists, so re-running a finished sweep does nothing and an interrupted one resumes.
//! A failed or diverged run is recorded as such, with its error, and the sweep goes on.
//! Scale-out: `--shard i/n` runs every n-th run; `--workers N` starts N local shard processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::sweep::PlannedRun;
use crate::train::{train, RunEnv, CHECKPOINT_FILE};

pub const STATUS_FILE: &str = "status.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Diverged,
}

/// `status.json` of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusRecord {
    pub run_id: String,
    pub status: RunStatus,
    pub error: Option<String>,
}

/// Where a sweep writes and how its runs execute.
#[derive(Debug, Clone)]
pub struct SweepEnv {
    pub name: String,
    /// `reports/NAME`
    pub dir: PathBuf,
    pub cache: PathBuf,
    pub device: String,
    pub data_dir: PathBuf,
    /// Keep each run's best checkpoint (FT checkpoints are the whole model).
    pub keep_checkpoints: bool,
}

impl SweepEnv {
    /// A sweep's dirs for commands that only read its results (report, check).
    pub fn for_reading(name: String, reports: &Path, device: &str) -> Self {
        Self {
            dir: reports.join(&name),
            name,
            cache: PathBuf::new(),
            device: device.into(),
            data_dir: PathBuf::new(),
            keep_checkpoints: true,
        }
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.dir.join("runs").join(id)
    }
}

pub fn read_status(run_dir: &Path) -> Option<StatusRecord> {
    let text = std::fs::read_to_string(run_dir.join(STATUS_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The runs without a `status.json` yet.
pub fn pending<'a>(runs: &'a [PlannedRun], env: &SweepEnv) -> Vec<&'a PlannedRun> {
    runs.iter()
        .filter(|r| read_status(&env.run_dir(&r.id)).is_none())
        .collect()
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

    pub fn message(&self, done: usize) -> String {
        let finished_here = done.saturating_sub(self.done_before);
        if finished_here == 0 {
            return "sweep ETA after the first run".into();
        }
        let per_run = self.started.elapsed().as_secs_f64() / finished_here as f64;
        let left = per_run * self.total.saturating_sub(done) as f64;
        format!("sweep ETA {:.0} min", (left / 60.0).ceil())
    }
}

/// Run every pending run of `runs` in this process, one after the other.
pub fn run_all(runs: &[PlannedRun], env: &SweepEnv, show_progress: bool) -> Result<()> {
    let todo = pending(runs, env);
    let multi = if show_progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    };
    let overall = overall_bar(&multi, runs.len(), runs.len() - todo.len());
    let eta = SweepEta::new(runs.len(), runs.len() - todo.len());
    for run in todo {
        overall.set_message(format!(
            "{}; now {} {} {}",
            eta.message(overall.position() as usize),
            run.config.task,
            run.config.method.name(),
            run.id
        ));
        let dir = env.run_dir(&run.id);
        let run_env = RunEnv {
            cache: env.cache.clone(),
            device: env.device.clone(),
            data_dir: env.data_dir.clone(),
            out: dir.clone(),
            progress: Some(multi.clone()),
            verbose: false,
        };
        let status = match train(&run.config, &run_env) {
            Ok(_) => StatusRecord {
                run_id: run.id.clone(),
                status: RunStatus::Ok,
                error: None,
            },
            Err(err) => {
                let message = format!("{err:#}");
                let status = if message.contains("diverged") {
                    RunStatus::Diverged
                } else {
                    RunStatus::Failed
                };
                multi.suspend(|| {
                    eprintln!(
                        "run {} ({} {}) {status:?}: {message}",
                        run.id,
                        run.config.task,
                        run.config.method.name()
                    )
                });
                StatusRecord {
                    run_id: run.id.clone(),
                    status,
                    error: Some(message),
                }
            }
        };
        if !env.keep_checkpoints {
            let _ = std::fs::remove_file(dir.join(CHECKPOINT_FILE));
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        crate::io::write_json(&dir.join(STATUS_FILE), &status)?;
        overall.inc(1);
    }
    overall.finish_and_clear();
    Ok(())
}

/// Start `workers` processes of this binary, each running one shard, and wait for all of them,
/// drawing the overall progress from the status files they write.
pub fn run_workers(
    runs: &[PlannedRun],
    env: &SweepEnv,
    workers: usize,
    worker_args: &[String],
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the ptv2 executable")?;
    // Split the cores between the workers (unless RAYON_NUM_THREADS says otherwise): N workers each
    // using every core oversubscribe the machine.
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / workers).max(1).to_string()
    });
    let mut children = vec![];
    for k in 0..workers {
        let child = Command::new(&exe)
            .env("RAYON_NUM_THREADS", &threads)
            .args(worker_args)
            .arg("--shard")
            .arg(format!("{k}/{workers}"))
            .arg("--no-report")
            .arg("--quiet")
            .spawn()
            .with_context(|| format!("cannot start worker {k}"))?;
        children.push(child);
    }
    let multi = MultiProgress::new();
    let done_before = runs.len() - pending(runs, env).len();
    let overall = overall_bar(&multi, runs.len(), done_before);
    let eta = SweepEta::new(runs.len(), done_before);
    let mut failed = vec![];
    while !children.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
        let done = runs.len() - pending(runs, env).len();
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
