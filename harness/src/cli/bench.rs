//! `ptv2 bench`: train-step time, evaluation throughput, peak memory and checkpoint size, ours
//! beside PyTorch's (`bench/train_step.rs`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use ptv2_models::{MethodKind, Precision};

use super::args::MachineArgs;
use crate::bench::train_step::{self, BenchConfig};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Models to measure: embedded names / dirs, `tiny` (a random 2-layer BERT, hidden 32), and
    /// `config:PATH` (random weights of a config.json's shape, e.g. roberta-large's: no download).
    #[arg(long, value_delimiter = ',', default_value = "minilm-l6,tiny")]
    pub models: Vec<String>,
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ft,pt,pt2")]
    pub methods: Vec<MethodKind>,
    #[arg(long, value_delimiter = ',', default_value = "128,256")]
    pub seq_lens: Vec<usize>,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 16)]
    pub prompt_len: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    #[arg(long, default_value = "reports/bench")]
    pub out: PathBuf,
    /// The frozen backbone's precision for PT, PT2 and LoRA (`ptv2 train --precision`); FT stays f32
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Python that runs the PyTorch side (skipped when it cannot import torch and transformers).
    #[arg(long, env = "PTV2_PYTHON", default_value = "python3")]
    pub python: String,
    /// Measure one model × method × length in this process and print it as JSON (used internally).
    #[arg(long, hide = true)]
    pub one: bool,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    train_step::run(&BenchConfig {
        models: args.models.clone(),
        methods: args.methods.clone(),
        seq_lens: args.seq_lens.clone(),
        batch_size: args.batch_size,
        prompt_len: args.prompt_len,
        warmup: args.warmup,
        steps: args.steps,
        out: args.out.clone(),
        device: args.machine.device.clone(),
        precision: args.precision,
        cache: args.machine.cache_dir(),
        python: args.python.clone(),
        one: args.one,
    })
}
