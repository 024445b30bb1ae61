//! `ptv2 replay RUN_DIR`: train a finished ptv2 run again in PyTorch + transformers + PEFT
//! (`framework = pytorch`, everything else the run's settings) and print both runs' per-epoch dev
//! scores side by side.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::args::EnvArgs;
use crate::records::run_dir::{RunDir, RunMetrics, TRAIN_ORDER_FILE};
use crate::records::settings::Framework;
use crate::run::train::train;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A ptv2 run dir (config.json; metrics.json when it has finished).
    pub run: PathBuf,
    /// Where the replay's run dir goes [default: beside RUN, named by its run id, the id a sweep
    /// with `framework = ["ptv2", "pytorch"]` in its grid gives it].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub env: EnvArgs,
}

pub fn run(args: &ReplayArgs) -> Result<()> {
    let ours = RunDir(args.run.clone());
    let mut settings = ours.settings()?;
    if settings.framework != Framework::Ptv2 {
        bail!(
            "{}: already a {:?} run; replay a ptv2 run",
            args.run.display(),
            settings.framework
        );
    }
    settings.framework = Framework::Pytorch;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => args.run.parent().unwrap_or(&args.run).join(settings.id()),
    };
    crate::records::signals::install();
    let env = args.env.run_env(&out, true)?;
    let replayed = train(&settings, &env)?;
    let same_batches = std::fs::read(ours.file(TRAIN_ORDER_FILE))
        .ok()
        .map(|recorded| Some(recorded) == std::fs::read(out.join(TRAIN_ORDER_FILE)).ok());
    print!("{}", side_by_side(ours.metrics().ok().as_ref(), &replayed));
    match same_batches {
        Some(true) => println!("same training batches as the run (train_order.json equal)"),
        Some(false) => bail!(
            "the replay's train_order.json differs from {}'s",
            args.run.display()
        ),
        None => {
            println!("the run recorded no train_order.json (an older ptv2): batches not compared")
        }
    }
    println!("replay → {}", out.display());
    Ok(())
}

/// Per-epoch main dev score and training loss of the run (if finished) and of its replay.
fn side_by_side(ours: Option<&RunMetrics>, replay: &RunMetrics) -> String {
    let metric = &replay.main_metric;
    let mut text = format!(
        "| epoch | ptv2 {metric} | pytorch {metric} | ptv2 train loss | pytorch train loss |\n|---|---|---|---|---|\n"
    );
    for (i, theirs) in replay.epochs.iter().enumerate() {
        let mine = ours.and_then(|m| m.epochs.get(i));
        let cell =
            |v: Option<f64>, digits: usize| v.map_or("–".into(), |v| format!("{v:.digits$}"));
        text.push_str(&format!(
            "| {} | {} | {:.4} | {} | {:.4} |\n",
            theirs.epoch,
            cell(mine.map(|e| e.dev[0].1), 4),
            theirs.dev[0].1,
            cell(mine.map(|e| e.train_loss), 4),
            theirs.train_loss
        ));
    }
    text
}
