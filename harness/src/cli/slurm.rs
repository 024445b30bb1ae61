//! `ptv2 slurm NAME`: write the sweep's sbatch job array (a task per shard), submit it when
//! sbatch is on the PATH; with `--wait`, build the report once every task is done.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::args::{DataArgs, SweepPaths};
use crate::orchestration::plan::SweepPlan;
use crate::orchestration::runner::WorkerCommand;
use crate::orchestration::slurm::SlurmOptions;

#[derive(Args, Debug)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub sweep: SweepPaths,
    #[command(flatten)]
    pub options: SlurmOptions,
    #[command(flatten)]
    pub data: DataArgs,
    /// Where embedded models are fetched to [default: $PTV2_CACHE or ~/.cache/ptv2].
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
}

pub fn run(args: &SlurmArgs) -> Result<()> {
    // A search's array tasks share its trials (claimed as they go): one per trial at most.
    let plan = args.sweep.plan()?;
    let tasks = match &plan {
        SweepPlan::Grid(runs) => runs.len(),
        SweepPlan::Search(search) => search.trial_runs().len(),
    };
    let worker = WorkerCommand {
        exe: std::env::current_exe().context("cannot find the ptv2 executable")?,
        sweep: args.sweep.name.clone(),
        experiments: args.sweep.experiments.clone(),
        reports: args.sweep.reports.clone(),
        data_dir: args.data.dir()?,
        cache: args
            .cache
            .clone()
            .unwrap_or_else(ptv2_models::hub::default_cache_dir),
        device: "cpu".into(),
        keep_checkpoints: false,
        // A Slurm log is a file: a line per run and epoch, as it happens.
        talk: crate::records::events::Talk::Lines,
    };
    let name = args.sweep.sweep_name();
    if crate::orchestration::slurm::run(&name, &args.options, tasks, &worker)? {
        let runs = plan.result_runs(&args.sweep.dir())?;
        super::report::print_summary(&args.sweep, &runs);
        super::report::build(&args.sweep, &plan, &runs, "slurm")?;
    }
    Ok(())
}
