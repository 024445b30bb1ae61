//! `ptv2 eval`: reload a run's checkpoint and score it on dev again.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{DataArgs, MachineArgs};
use crate::train::evaluate_checkpoint;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run dir written by `ptv2 train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub machine: MachineArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let env = args.machine.run_env(&args.data, &args.checkpoint, false)?;
    let (settings, scores) = evaluate_checkpoint(&args.checkpoint, &env)?;
    let text: Vec<String> = scores.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    println!(
        "{} {} dev: {}",
        settings.task,
        settings.method,
        text.join(", ")
    );
    Ok(())
}
