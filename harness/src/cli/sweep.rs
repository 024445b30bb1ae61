//! `ptv2 sweep NAME`: run what is not done yet (in local worker processes, or one shard), then
//! print a line per run and build the report.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::args::{EnvArgs, SweepPaths};
use crate::bench::estimate::{span, BenchRates, Estimator, RunEstimate};
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
    /// Print the runs (id, settings, done or pending) and stop; with bench rows, each pending
    /// run's expected time and the sum.
    #[arg(long)]
    pub dry_run: bool,
    /// The `ptv2 bench` rows that price `--dry-run`'s runs: a bench.csv or the dir holding it,
    /// measured on the machine the sweep will run on [default: REPORTS/bench/bench.csv].
    #[arg(long)]
    pub bench: Option<PathBuf>,
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
            SweepPlan::Grid(_) => print_plan(&runs, &mine, &env, &bench_rates(args)?),
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

/// `--bench`'s rows, or the default file's when it exists; else where they were looked for (no
/// estimate then).
fn bench_rates(args: &SweepArgs) -> Result<Result<BenchRates, PathBuf>> {
    let default = args.sweep.bench_csv();
    match &args.bench {
        Some(path) => BenchRates::read(path).map(Ok),
        None if default.is_file() => BenchRates::read(&default).map(Ok),
        None => Ok(Err(default)),
    }
}

/// `--dry-run`: the runs with their settings and state, and what the pending ones will take by
/// the bench rows (or where they were looked for). A reader that stops early (`| head`) is not
/// an error: printing stops quietly.
fn print_plan(
    runs: &[PlannedRun],
    mine: &[PlannedRun],
    env: &SweepEnv,
    rates: &Result<BenchRates, PathBuf>,
) {
    let mut out = std::io::stdout().lock();
    let (all, here) = (runs.len(), mine.len());
    let _ = writeln!(
        out,
        "{all} runs in sweep {} ({here} in this shard)",
        env.name
    );
    let mut estimator = rates
        .as_ref()
        .ok()
        .map(|r| Estimator::new(r, &env.data_dir));
    let mut total = PendingTime::default();
    for run in mine {
        let dir = env.dir.run(&run.id);
        let state = match (dir.status(), estimator.as_mut()) {
            (None, Some(estimator)) => total.add(estimator.estimate(&run.settings)),
            (None, None) => "pending".to_string(),
            // A finished run's time beside its estimate: how far to trust the pending ones'.
            (Some(status), estimator) => {
                let took = dir.metrics().map_or(String::new(), |m| {
                    format!(", took {}", span(m.wall_seconds))
                });
                let guess = estimator
                    .and_then(|e| e.estimate(&run.settings).ok())
                    .map_or(String::new(), |e| {
                        format!(" (estimate {})", span(e.seconds()))
                    });
                format!("{}{took}{guess}", status.status.name())
            }
        };
        if writeln!(out, "{} [{state}]", plan_line(run)).is_err() {
            return;
        }
    }
    let _ = match rates {
        Ok(rates) => writeln!(out, "{}", total.summary(rates)),
        Err(missing) => writeln!(
            out,
            "no time estimate: no bench rows at {} (`tools/just bench` writes them; or --bench PATH)",
            missing.display()
        ),
    };
}

/// The summed estimate of the pending runs, and how many could not be priced.
#[derive(Default)]
struct PendingTime {
    train_s: f64,
    eval_s: f64,
    priced: usize,
    unpriced: usize,
}

impl PendingTime {
    /// Count one run's estimate in; its state column.
    fn add(&mut self, estimate: Result<RunEstimate, String>) -> String {
        match estimate {
            Ok(e) => {
                (self.train_s, self.eval_s, self.priced) = (
                    self.train_s + e.train_s,
                    self.eval_s + e.eval_s,
                    self.priced + 1,
                );
                let borrowed = e
                    .priced_as
                    .map_or(String::new(), |m| format!(", priced as {m}"));
                format!("pending, ≈ {}{borrowed}", span(e.seconds()))
            }
            Err(why) => {
                self.unpriced += 1;
                format!("pending, no estimate: {why}")
            }
        }
    }

    fn summary(&self, rates: &BenchRates) -> String {
        let unpriced = match self.unpriced {
            0 => String::new(),
            n => format!(" ({n} more pending without an estimate)"),
        };
        format!(
            "{} pending runs ≈ {} of run time summed (train {}, dev evaluations {}){unpriced}, from the bench rows in {} ({} threads a run; fewer take longer): each step priced by the row closest in matmul work, batches as long as their examples' characters suggest (4.5 a token, at most max_len); divide by the workers or array tasks running at once",
            self.priced,
            span(self.train_s + self.eval_s),
            span(self.train_s),
            span(self.eval_s),
            rates.path.display(),
            rates.threads()
        )
    }
}

/// A run's id and settings, as `--dry-run` lists them.
fn plan_line(run: &PlannedRun) -> String {
    let s = &run.settings;
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
    format!(
        "{}  {:<8} {:<4} P={:<3} lr={:<8} epochs={:<3} bs={:<3} seed={:<3} model={}{extra}",
        run.id,
        s.task,
        s.tuning.method,
        s.tuning.prompt_len,
        s.lr,
        s.epochs,
        s.batch_size,
        s.seed,
        s.model
    )
}
