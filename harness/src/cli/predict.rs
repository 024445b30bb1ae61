//! `ptv2 predict`: label new inputs with a trained run. Input is JSONL in the task's shape —
//! `{"text": …}` or `{"text": …, "pair": …}` for classification, `{"tokens": [...]}` for NER,
//! `{"question": …, "context": …}` for QA — and output is one JSON line per input, in order.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::args::EnvArgs;
use crate::run::trained::Trained;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A run dir written by `ptv2 train` (or a sweep run kept with --keep-checkpoints).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// JSONL inputs; `-` reads standard input.
    #[arg(long)]
    pub input: String,
    /// Where to write the JSONL outputs [default: standard output].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub env: EnvArgs,
}

/// The inputs, one JSON object a line (blank lines skipped), with where each came from.
fn read_inputs(source: &str) -> Result<Vec<(String, serde_json::Value)>> {
    let reader: Box<dyn BufRead> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(source).with_context(|| format!("cannot read {source}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut inputs = vec![];
    for (i, line) in reader.lines().enumerate() {
        let at = format!("{source}:{}", i + 1);
        let line = line.with_context(|| format!("cannot read {at}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("{at}: not a JSON object"))?;
        if !value.is_object() {
            anyhow::bail!("{at}: not a JSON object");
        }
        inputs.push((at, value));
    }
    Ok(inputs)
}

pub fn run(args: &PredictArgs) -> Result<()> {
    let inputs = read_inputs(&args.input)?;
    let env = args.env.run_env(&args.checkpoint, false)?;
    let trained = Trained::load(&args.checkpoint, &env)?;
    let values: Vec<serde_json::Value> = inputs.iter().map(|(_, v)| v.clone()).collect();
    let at = |i: usize| inputs[i].0.clone();
    let outputs = trained.task.predict(&trained.predictor(), &values, &at)?;
    let mut text = String::new();
    for output in outputs {
        text.push_str(&serde_json::to_string(&output)?);
        text.push('\n');
    }
    match &args.out {
        Some(path) => crate::records::io::write_atomic(path, text.as_bytes()),
        None => Ok(std::io::stdout().lock().write_all(text.as_bytes())?),
    }
}
