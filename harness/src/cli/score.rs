//! `ptv2 score`: score a predictions file against a task's dev split.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::DataArgs;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Task whose dev split is the gold standard (also `conll:TRAIN,DEV`, `squad:TRAIN,DEV`).
    #[arg(long)]
    pub task: String,
    /// Predictions: one label per line (or ptv2's dev_predictions.tsv), CoNLL columns with the
    /// prediction last, or SQuAD `{id: answer}` JSON.
    #[arg(long)]
    pub predictions: PathBuf,
    /// Score against the first N dev examples only (as a run with --max-eval N).
    #[arg(long)]
    pub max_eval: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: &ScoreArgs) -> Result<()> {
    let mut task = crate::run::tasks::load_task(&args.task, &args.data.dir()?)?;
    task.subset(None, args.max_eval, Default::default());
    for (name, value) in task.score_file(&args.predictions)? {
        println!("{name}\t{value:.6}");
    }
    Ok(())
}
