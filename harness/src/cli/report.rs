//! `ptv2 report NAME`: a sweep's tables, charts and report.md rebuilt from its runs' files, without
//! training; `build` is also what `ptv2 sweep` and `ptv2 slurm --wait` end with.

use anyhow::Result;
use clap::Args;

use super::args::SweepPaths;
use crate::orchestration::plan::SweepPlan;
use crate::orchestration::search_run::record;
use crate::records::run_dir::PlannedRun;

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub sweep: SweepPaths,
    /// The device the runs used, as the report names it.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let plan = args.sweep.plan()?;
    let runs = plan.result_runs(&args.sweep.dir())?;
    build(&args.sweep, &plan, &runs, &args.device)
}

/// Tables, charts and report.md of a sweep (`plan`, whose result runs are `runs`), from its runs'
/// files alone.
pub fn build(
    sweep: &SweepPaths,
    plan: &SweepPlan,
    runs: &[PlannedRun],
    device: &str,
) -> Result<()> {
    let (name, file) = (sweep.sweep_name(), sweep.file());
    let search = match plan {
        SweepPlan::Search(search) => Some(record(search, &sweep.dir())?),
        SweepPlan::Grid(_) => None,
    };
    crate::reporting::report::build(&sweep.dir(), &name, &file, runs, device, search.as_ref())
}

/// One line per run: its main dev score, or its status.
pub fn print_summary(sweep: &SweepPaths, runs: &[PlannedRun]) {
    crate::reporting::results::print_summary(&sweep.dir(), runs);
}
