//! `ptv2 slurm NAME`: the sweep as a Slurm job array whose tasks are its shards. Writes
//! `reports/NAME/slurm.sbatch` and submits it with `sbatch` when that is on the PATH; `--wait`
//! blocks until the array is done and then builds the merged tables and report.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// Sweep name (`experiments/NAME.toml`) or a path to a sweep TOML file.
    pub name: String,
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
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Slurm's default MaxArraySize is 1001: bigger sweeps give each task several runs.
const MAX_TASKS: usize = 1000;

pub fn script(args: &SlurmArgs, runs: usize, data_dir: &Path, cache: &Path) -> Result<String> {
    let shards = runs.clamp(1, MAX_TASKS);
    let exe = std::env::current_exe().context("cannot find the ptv2 executable")?;
    let name = crate::sweep::sweep_name(&args.name);
    let logs = absolute(&args.reports.join(&name).join("slurm"))?;
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=ptv2-{name}\n"));
    let throttle = args.throttle.map_or(String::new(), |k| format!("%{k}"));
    s.push_str(&format!("#SBATCH --array=0-{}{throttle}\n", shards - 1));
    s.push_str(&format!(
        "#SBATCH --output={}/%x-%A_%a.out\n",
        logs.display()
    ));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", args.cpus));
    if let Some(p) = &args.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if args.gpus > 0 {
        s.push_str(&format!("#SBATCH --gres=gpu:{}\n", args.gpus));
    }
    if let Some(t) = &args.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(m) = &args.mem {
        s.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    s.push_str(&format!("cd {}\n", absolute(Path::new("."))?.display()));
    let name_arg = if args.name.ends_with(".toml") {
        absolute(Path::new(&args.name))?.display().to_string()
    } else {
        args.name.clone()
    };
    s.push_str(&format!(
        "exec {} sweep {name_arg} --experiments {} --reports {} --data {} --cache {} --device {} --shard \"$SLURM_ARRAY_TASK_ID/{shards}\" --no-report --quiet\n",
        exe.display(),
        absolute(&args.experiments)?.display(),
        absolute(&args.reports)?.display(),
        absolute(data_dir)?.display(),
        absolute(cache)?.display(),
        if args.gpus > 0 { "cuda" } else { "cpu" }
    ));
    Ok(s)
}

/// Write the script; submit it when sbatch is available. Returns whether the array finished
/// (with `--wait`).
pub fn run(args: &SlurmArgs, runs: usize, data_dir: &Path, cache: &Path) -> Result<bool> {
    let name = crate::sweep::sweep_name(&args.name);
    let dir = args.reports.join(&name);
    std::fs::create_dir_all(dir.join("slurm"))?;
    let path = dir.join("slurm.sbatch");
    crate::io::write_atomic(&path, script(args, runs, data_dir, cache)?.as_bytes())?;
    eprintln!("wrote {}", path.display());
    let has_sbatch = Command::new("sbatch")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if args.no_submit || !has_sbatch {
        if !args.no_submit {
            eprintln!(
                "sbatch is not on the PATH: submit it with `sbatch {}`",
                path.display()
            );
        }
        return Ok(false);
    }
    let mut command = Command::new("sbatch");
    command.arg("--parsable");
    if args.wait {
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
    Ok(args.wait)
}
