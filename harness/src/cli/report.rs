//! `ptv2 report NAME`: a sweep's tables, charts and report.md rebuilt from its runs' files, without
//! training; `build` is also what `ptv2 sweep` and `ptv2 slurm --wait` end with.

use anyhow::Result;
use clap::Args;

use super::SweepPaths;
use crate::records::run_dir::{PlannedRun, RunStatus};
use crate::reporting::results::{collect, write_tables};

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub sweep: SweepPaths,
    /// The device the runs used, as the report names it.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    build(&args.sweep, &args.sweep.runs()?, &args.device)
}

/// Tables, charts and report.md of a sweep, from its runs' files alone.
pub fn build(sweep: &SweepPaths, runs: &[PlannedRun], device: &str) -> Result<()> {
    let dir = sweep.dir();
    let records = collect(runs, &dir)?;
    let (rows, summary) = write_tables(&records, dir.path())?;
    let charts = crate::reporting::charts::draw_all(&summary, &dir.path().join("charts"))?;
    let ctx = crate::reporting::report::ReportContext {
        name: &sweep.sweep_name(),
        sweep_file: &sweep.file(),
        device,
        charts: &charts,
    };
    crate::reporting::report::write_report(&records, &rows, &summary, &ctx, dir.path())?;
    eprintln!(
        "wrote {} ({} rows, {} charts)",
        dir.path().join("report.md").display(),
        rows.len(),
        charts.len()
    );
    Ok(())
}

/// One line per run: its main dev score, or its status.
pub fn print_summary(sweep: &SweepPaths, runs: &[PlannedRun]) {
    let dir = sweep.dir();
    for run in runs {
        let run_dir = dir.run(&run.id);
        let s = &run.settings;
        let outcome = match run_dir.status() {
            None => "pending".to_string(),
            Some(st) if st.status != RunStatus::Ok => {
                format!("{:?}: {}", st.status, st.error.unwrap_or_default())
            }
            Some(_) => run_dir.metrics().map_or("no metrics.json".into(), |m| {
                format!("{} {:.4}", m.best_dev[0].0, m.best_dev[0].1)
            }),
        };
        println!(
            "{}  {:<8} {:<4} P={:<3} seed={:<3} {outcome}",
            run.id, s.task, s.tuning.method, s.tuning.prompt_len, s.seed
        );
    }
}
