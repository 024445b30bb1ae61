//! `ptv2 eval`: reload a run's checkpoint and score it on dev again, and on the task's labelled
//! test split where it has one.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::EnvArgs;
use crate::records::run_dir::{RunDir, METRICS_FILE};
use crate::run::trained::{score_test_of, Trained};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run dir written by `ptv2 train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Write the test scores into the run's metrics.json (for runs trained before ptv2 scored
    /// test splits; `ptv2 report` then shows them).
    #[arg(long)]
    pub record_test: bool,
    #[command(flatten)]
    pub env: EnvArgs,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let env = args.env.run_env(&args.checkpoint, false)?;
    // Loaded once for both splits.
    let trained = Trained::load(&args.checkpoint, &env)?;
    let settings = &trained.settings;
    let scores = trained.task.evaluate(&trained.predictor())?.scores;
    let text: Vec<String> = scores.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    println!(
        "{} {} dev: {}",
        settings.task,
        settings.tuning.method,
        text.join(", ")
    );
    let Some(test) = score_test_of(&trained, &args.checkpoint, &env)? else {
        return Ok(());
    };
    let text: Vec<String> = test.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    println!(
        "{} {} test: {}",
        settings.task,
        settings.tuning.method,
        text.join(", ")
    );
    if args.record_test {
        let run = RunDir(args.checkpoint.clone());
        let mut metrics = run.metrics()?;
        metrics.best_test = Some(test);
        crate::records::io::write_json(&run.file(METRICS_FILE), &metrics)?;
    }
    Ok(())
}
