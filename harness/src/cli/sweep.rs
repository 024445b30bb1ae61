//! `ptv2 sweep NAME`: run what is not done yet (in local worker processes, or one shard), then
//! print a line per run and build the report.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;

use super::args::{EnvArgs, SweepPaths};
use crate::orchestration::plan::SweepPlan;
use crate::orchestration::runner::{run_all, run_workers, SweepEnv, WorkerCommand};
use crate::orchestration::search_run::{describe, run_search};
use crate::orchestration::sweep::{parse_shard, shard};
use crate::records::events::{self, Talk};
use crate::records::run_dir::PlannedRun;

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub sweep: SweepPaths,
    /// Print the runs (id, settings, done or pending) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the pending runs in this many local worker processes [default: one per CPU core,
    /// at most one per pending run; each worker gets cores / N rayon threads].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Run only shard i of n (0-based): every n-th run starting at i.
    #[arg(long)]
    pub shard: Option<String>,
    #[command(flatten)]
    pub env: EnvArgs,
    /// Keep every run's best checkpoint (off: FT checkpoints are the whole model).
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// Skip the summary at the end (worker processes).
    #[arg(long, hide = true)]
    pub no_report: bool,
    /// No progress bars, and no lines off a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Say each run's start and finish, each epoch and a line every 5 minutes as JSON, one
    /// object per line on stdout (`event`: run_started, epoch, step, run_finished), for tools.
    #[arg(long)]
    pub json: bool,
    /// What a worker process says (set by the sweep that starts it).
    #[arg(long, hide = true, value_enum)]
    pub talk: Option<Talk>,
}

/// What the sweep says on stdout: JSON events when asked, nothing when quiet or on a terminal
/// (the progress bars say it there), else a line per event (a file, a pipe, a Slurm log).
fn talk(args: &SweepArgs) -> Talk {
    use std::io::IsTerminal;
    match (args.talk, args.json, args.quiet) {
        (Some(talk), _, _) => talk,
        (None, true, _) => Talk::Json,
        (None, false, true) => Talk::Quiet,
        (None, false, false) if std::io::stdout().is_terminal() => Talk::Quiet,
        (None, false, false) => Talk::Lines,
    }
}

fn sweep_env(args: &SweepArgs) -> Result<SweepEnv> {
    Ok(SweepEnv {
        name: args.sweep.sweep_name(),
        dir: args.sweep.dir(),
        cache: args.env.machine.cache_dir(),
        device: args.env.machine.device.clone(),
        data_dir: args.env.data.dir()?,
        keep_checkpoints: args.keep_checkpoints,
    })
}

pub fn run(args: &SweepArgs) -> Result<()> {
    let plan = args.sweep.plan()?;
    let env = sweep_env(args)?;
    let shard_of = args.shard.as_deref().map(parse_shard).transpose()?;
    // A search's work is found as it goes; its trials are what workers start on.
    let runs = match &plan {
        SweepPlan::Grid(runs) => runs.clone(),
        SweepPlan::Search(search) => search.trial_runs(),
    };
    let mine = match shard_of {
        Some(part) if matches!(plan, SweepPlan::Grid(_)) => shard(&runs, part),
        _ => runs.clone(),
    };
    if args.dry_run {
        match &plan {
            SweepPlan::Grid(_) => print_plan(&runs, &mine, &env),
            SweepPlan::Search(search) => print!("{}", describe(search, &env.dir)?),
        }
        return Ok(());
    }
    std::fs::create_dir_all(env.dir.path())?;
    crate::records::signals::install();
    let talk = talk(args);
    events::set_talk(talk);
    // Independent runs scale better as one process per core than as one process on every core.
    let workers = args.workers.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.min(env.dir.pending(&mine).len()).max(1)
    });
    let show_progress = !args.quiet && !args.json;
    if workers > 1 && args.shard.is_none() {
        let command = WorkerCommand {
            exe: std::env::current_exe().context("cannot find the ptv2 executable")?,
            sweep: args.sweep.name.clone(),
            experiments: args.sweep.experiments.clone(),
            reports: args.sweep.reports.clone(),
            data_dir: env.data_dir.clone(),
            cache: env.cache.clone(),
            device: env.device.clone(),
            keep_checkpoints: args.keep_checkpoints,
            talk,
        };
        run_workers(&runs, &env, workers, &command)?;
    } else if let SweepPlan::Search(search) = &plan {
        run_search(search, &env, shard_of, show_progress)?;
    } else {
        run_all(&runs, &mine, &env, show_progress)?;
    }
    if !args.no_report {
        let runs = plan.result_runs(&env.dir)?;
        // JSON events are the whole of stdout for a tool; the table is for people.
        if !args.json {
            super::report::print_summary(&args.sweep, &runs);
        }
        super::report::build(&args.sweep, &plan, &runs, &env.device)?;
    }
    Ok(())
}

/// `--dry-run`: the runs with their settings and state. A reader that stops early (`| head`) is
/// not an error: printing stops quietly.
fn print_plan(runs: &[PlannedRun], mine: &[PlannedRun], env: &SweepEnv) {
    let mut out = std::io::stdout().lock();
    let (all, here) = (runs.len(), mine.len());
    let _ = writeln!(
        out,
        "{all} runs in sweep {} ({here} in this shard)",
        env.name
    );
    for run in mine {
        let s = &run.settings;
        let state = env
            .dir
            .run(&run.id)
            .status()
            .map_or("pending", |st| st.status.name());
        let mut extra = String::new();
        let details = s.method().map(|m| m.details()).unwrap_or_default();
        if !details.is_empty() {
            extra.push_str(&format!(" {details}"));
        }
        if !s.init().is_empty() && s.init() != "random" {
            extra.push_str(&format!(" init={}", s.init()));
        }
        for (key, value) in s.away_from_default() {
            if !key.starts_with("lora_") {
                extra.push_str(&format!(" {key}={value}"));
            }
        }
        let line = writeln!(
            out,
            "{}  {:<8} {:<4} P={:<3} lr={:<8} epochs={:<3} bs={:<3} seed={:<3} model={}{extra} [{state}]",
            run.id, s.task, s.tuning.method, s.tuning.prompt_len, s.lr, s.epochs, s.batch_size, s.seed, s.model
        );
        if line.is_err() {
            break;
        }
    }
}
