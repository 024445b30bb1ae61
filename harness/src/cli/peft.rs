//! `ptv2 export-peft` and `ptv2 import-peft`: a PT2/PT run as a PEFT adapter dir and back.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::EnvArgs;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A PT2, PT or LoRA run dir (written by `ptv2 train`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The adapter dir to write (adapter_config.json, adapter_model.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub env: EnvArgs,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A PEFT adapter dir (PREFIX_TUNING, PROMPT_TUNING or LORA).
    #[arg(long)]
    pub adapter: PathBuf,
    /// The backbone the adapter was trained on (an embedded name or an HF model dir).
    #[arg(long)]
    pub model: String,
    /// The ptv2 task whose head and labels the adapter's head is.
    #[arg(long)]
    pub task: String,
    /// Token limit of predictions with the imported run.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// The learning rate the adapter was trained with, if known: only recorded in config.json
    /// (a run's settings need one); nothing is trained.
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f64,
    /// The run dir to write (config.json, checkpoint.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub env: EnvArgs,
}

pub fn export(args: &ExportArgs) -> Result<()> {
    let env = args.env.run_env(&args.checkpoint, false)?;
    crate::serving::peft::export(&args.checkpoint, &env, &args.out)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

pub fn import(args: &ImportArgs) -> Result<()> {
    let env = args.env.run_env(&args.out, false)?;
    let mut values = vec![
        ("model".to_string(), args.model.clone()),
        ("task".to_string(), args.task.clone()),
        ("lr".to_string(), args.lr.to_string()),
    ];
    if let Some(max_len) = args.max_len {
        values.push(("max_len".to_string(), max_len.to_string()));
    }
    crate::serving::peft::import(&args.adapter, &values, &env, &args.out)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
