//! `ptv2 slurm NAME`: the sweep as a Slurm job array whose tasks are its shards. Writes
//! `reports/NAME/slurm.sbatch` and submits it with `sbatch` when that is on the PATH; `--wait`
//! blocks until the array is done and then builds the merged tables and report.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::orchestration::runner::WorkerCommand;

/// How the array's tasks are scheduled.
#[derive(Args, Debug, Clone)]
pub struct SlurmOptions {
    #[arg(long)]
    pub partition: Option<String>,
    /// GPUs per task (`--gres=gpu:G`); runs then use `--device cuda`.
    #[arg(long, default_value_t = 0)]
    pub gpus: usize,
    /// Time limit per task, e.g. 02:00:00.
    #[arg(long)]
    pub time: Option<String>,
    #[arg(long, default_value_t = 2)]
    pub cpus: usize,
    /// Memory per task, e.g. 8G.
    #[arg(long)]
    pub mem: Option<String>,
    /// At most this many array tasks at once (`--array=0-N%K`).
    #[arg(long)]
    pub throttle: Option<usize>,
    /// Block until every task is done, then build the report.
    #[arg(long)]
    pub wait: bool,
    /// Only write the script.
    #[arg(long)]
    pub no_submit: bool,
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Slurm's default MaxArraySize is 1001: bigger sweeps give each task several runs.
const MAX_TASKS: usize = 1000;

/// A word of a shell command line: as it is when plain, else double-quoted (so a `$VAR` in it
/// still expands).
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if word.chars().all(plain) {
        word.to_string()
    } else {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The sbatch script: one array task per shard, each the worker command of its shard.
/// `worker`'s paths must be absolute (tasks start elsewhere).
pub fn script(
    name: &str,
    options: &SlurmOptions,
    runs: usize,
    worker: &WorkerCommand,
) -> Result<String> {
    let shards = runs.clamp(1, MAX_TASKS);
    let logs = absolute(&worker.reports.join(name).join("slurm"))?;
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=ptv2-{name}\n"));
    let throttle = options.throttle.map_or(String::new(), |k| format!("%{k}"));
    s.push_str(&format!("#SBATCH --array=0-{}{throttle}\n", shards - 1));
    s.push_str(&format!(
        "#SBATCH --output={}/%x-%A_%a.out\n",
        logs.display()
    ));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", options.cpus));
    if let Some(p) = &options.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if options.gpus > 0 {
        s.push_str(&format!("#SBATCH --gres=gpu:{}\n", options.gpus));
    }
    if let Some(t) = &options.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(m) = &options.mem {
        s.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    s.push_str(&format!("cd {}\n", absolute(Path::new("."))?.display()));
    let mut words = vec![shell_word(&worker.exe.display().to_string())];
    words.extend(
        worker
            .args(&format!("$SLURM_ARRAY_TASK_ID/{shards}"))
            .iter()
            .map(|w| shell_word(w)),
    );
    s.push_str(&format!("exec {}\n", words.join(" ")));
    Ok(s)
}

/// `worker` with absolute paths, on the device the options ask for.
pub fn absolute_worker(worker: &WorkerCommand, options: &SlurmOptions) -> Result<WorkerCommand> {
    let sweep = if worker.sweep.ends_with(".toml") {
        absolute(Path::new(&worker.sweep))?.display().to_string()
    } else {
        worker.sweep.clone()
    };
    Ok(WorkerCommand {
        sweep,
        experiments: absolute(&worker.experiments)?,
        reports: absolute(&worker.reports)?,
        data_dir: absolute(&worker.data_dir)?,
        cache: absolute(&worker.cache)?,
        device: if options.gpus > 0 { "cuda" } else { "cpu" }.into(),
        ..worker.clone()
    })
}

/// Write the script; submit it when sbatch is available. Returns whether the array finished
/// (with `--wait`).
pub fn run(
    name: &str,
    options: &SlurmOptions,
    runs: usize,
    worker: &WorkerCommand,
) -> Result<bool> {
    let worker = absolute_worker(worker, options)?;
    let dir = worker.reports.join(name);
    std::fs::create_dir_all(dir.join("slurm"))?;
    let path = dir.join("slurm.sbatch");
    crate::records::io::write_atomic(&path, script(name, options, runs, &worker)?.as_bytes())?;
    eprintln!("wrote {}", path.display());
    let has_sbatch = Command::new("sbatch")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if options.no_submit || !has_sbatch {
        if !options.no_submit {
            eprintln!(
                "sbatch is not on the PATH: submit it with `sbatch {}`",
                path.display()
            );
        }
        return Ok(false);
    }
    let mut command = Command::new("sbatch");
    command.arg("--parsable");
    if options.wait {
        command.arg("--wait");
    }
    let output = command.arg(&path).output().context("cannot run sbatch")?;
    let job = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() {
        bail!(
            "sbatch {} failed (job {job}): {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!(
        "submitted job array {job} ({} tasks)",
        runs.clamp(1, MAX_TASKS)
    );
    Ok(options.wait)
}
