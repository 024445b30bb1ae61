//! `ptv2 train`: one run, its settings as flags.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::EnvArgs;
use crate::records::run_dir::METRICS_FILE;
use crate::records::settings::RunSettings;
use crate::run::train::train;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub settings: RunSettings,
    #[command(flatten)]
    pub env: EnvArgs,
    /// Output dir for config.json, metrics.json, the checkpoint and predictions.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let settings = args.settings.clone().resolved()?;
    crate::records::signals::install();
    let env = args.env.run_env(&args.out, true)?;
    let metrics = train(&settings, &env)?;
    let scores: Vec<String> = metrics
        .best_dev
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    eprintln!(
        "best epoch {}/{}: {}; {:.1} s, {:.2} steps/s, peak RSS {:.0} MB, checkpoint {} bytes → {}",
        metrics.best_epoch,
        settings.epochs,
        scores.join(", "),
        metrics.wall_seconds,
        metrics.train_steps_per_second,
        metrics.peak_rss_mb,
        metrics.checkpoint_bytes,
        env.out.join(METRICS_FILE).display()
    );
    Ok(())
}
