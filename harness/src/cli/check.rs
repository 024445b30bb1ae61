//! `ptv2 check NAME --baseline FILE`: exit non-zero with a readable table when a configuration's
//! score fell beyond the tolerance.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::args::SweepPaths;
use crate::reporting::check::{compare, read_baseline, table};
use crate::reporting::results::{collect, rows, summarize};

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub sweep: SweepPaths,
    /// A committed summary.csv of a real run.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Allowed drop of a configuration's mean score (absolute, e.g. 0.02 = 2 points).
    #[arg(long, default_value_t = 0.02)]
    pub tolerance: f64,
}

pub fn run(args: &CheckArgs) -> Result<()> {
    let runs = args.sweep.runs()?;
    let current = summarize(&rows(&collect(&runs, &args.sweep.dir())?));
    let lines = compare(&read_baseline(&args.baseline)?, &current, args.tolerance);
    print!("{}", table(&lines, args.tolerance));
    let failed = lines.iter().filter(|l| !l.passed).count();
    if failed > 0 {
        bail!(
            "{failed} of {} configurations regressed or are missing (baseline {})",
            lines.len(),
            args.baseline.display()
        );
    }
    println!(
        "all {} configurations within {} of the baseline",
        lines.len(),
        args.tolerance
    );
    Ok(())
}
