//! `ptv2 bench`: train-step time, evaluation throughput, peak memory and checkpoint size of FT, PT
//! and PT2, on MiniLM-L6 and on a tiny random BERT, with PyTorch's numbers beside ours when torch
//! is importable (`tools/reference/bench_torch.py`, same model, batch, length and thread count).
//!
//! Each measurement runs in its own process (`ptv2 bench --one …`) so that peak RSS belongs to one
//! method alone. Times are medians over the measured steps after warm-up steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Args;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use ptv2_models::loss::loss;
use ptv2_models::{
    backend, resolve_model, Encoder, EncoderConfig, EncoderInput, HeadKind, Method, MethodInit,
    MethodOptions, Pretrained, Targets, TunedModel,
};

use super::MachineArgs;
use crate::optim::{adamw, clip_global_norm};
use crate::records::peak_rss_mb;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Models to measure: embedded names / dirs, and `tiny` (a random 2-layer BERT, hidden 32).
    #[arg(long, value_delimiter = ',', default_value = "minilm-l6,tiny")]
    pub models: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "ft,pt,pt2")]
    pub methods: Vec<String>,
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
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Python that runs the PyTorch side (skipped when it cannot import torch and transformers).
    #[arg(long, env = "PTV2_PYTHON", default_value = "python3")]
    pub python: String,
    /// Measure one model × method × length in this process and print it as JSON (used internally).
    #[arg(long, hide = true)]
    pub one: bool,
}

/// One measurement, ours or PyTorch's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub framework: String,
    pub model: String,
    pub method: String,
    pub seq_len: usize,
    pub batch_size: usize,
    pub train_step_s: f64,
    pub eval_seq_per_s: f64,
    pub peak_rss_mb: f64,
    pub checkpoint_bytes: u64,
    pub trainable: usize,
    pub threads: usize,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn random_input(batch: usize, seq: usize, vocab: usize, device: &Device) -> EncoderInput {
    let mut rng = StdRng::seed_from_u64(0);
    let ids: Vec<i64> = (0..batch * seq)
        .map(|_| rng.random_range(1000..vocab as i64))
        .collect();
    let t = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [batch, seq]), device);
    EncoderInput {
        input_ids: t(ids),
        attention_mask: t(vec![1; batch * seq]),
        token_type_ids: t(vec![0; batch * seq]),
    }
}

fn encoder_of(model: &str, cache: &Path, device: &Device) -> Result<(EncoderConfig, Encoder)> {
    if model == "tiny" {
        let mut config = EncoderConfig::tiny_bert();
        config.vocab_size = 2000;
        config.max_position_embeddings = 512;
        let encoder = Encoder::init(&config, true, device);
        return Ok((config, encoder));
    }
    let spec = resolve_model(model, cache)?;
    let pretrained = Pretrained::load(&spec, 512, device)?;
    Ok((pretrained.config, pretrained.encoder))
}

/// Measure one model × method × length in this process.
pub fn measure(args: &BenchArgs, model: &str, method: &str, seq: usize) -> Result<BenchRow> {
    let device = backend::device_by_name(&args.machine.device)?;
    let train_device = device.clone().autodiff();
    train_device.seed(0);
    let cache = args.machine.cache_dir();
    let (config, encoder) = encoder_of(model, &cache, &train_device)?;
    let options = MethodOptions {
        prompt_len: args.prompt_len,
        ..MethodOptions::neutral()
    };
    let method = Method::from_options(method, &options).map_err(anyhow::Error::msg)?;
    let init = MethodInit {
        dropout: 0.1,
        init_std: config.initializer_range,
        init_tokens: None,
    };
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let mut tuned = TunedModel::new(encoder, &method, &head, &init, &train_device);
    let trainable = tuned.param_counts().trainable;
    let input = random_input(args.batch_size, seq, config.vocab_size, &train_device);
    let targets = Targets::Classes((0..args.batch_size as i64).map(|i| i % 2).collect());
    let mut optimizer = adamw();
    let mut times = vec![];
    for step in 0..args.warmup + args.steps {
        let start = Instant::now();
        let grads = loss(tuned.forward(&input), &targets).backward();
        let mut grads = GradientsParams::from_grads(grads, &tuned);
        clip_global_norm(&tuned, &mut grads, 1.0);
        tuned = optimizer.step(1e-4, tuned, grads);
        train_device.sync().ok();
        if step >= args.warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    // Evaluation: forward only, dropout off, on the inference device.
    let eval_model = tuned.valid();
    let eval_input = random_input(args.batch_size, seq, config.vocab_size, &device);
    let mut eval_times = vec![];
    for step in 0..args.warmup + args.steps {
        let start = Instant::now();
        let _ = eval_model.forward(&eval_input);
        device.sync().ok();
        if step >= args.warmup {
            eval_times.push(start.elapsed().as_secs_f64());
        }
    }
    let tmp = tempfile::tempdir()?;
    let checkpoint = tmp.path().join("checkpoint.safetensors");
    eval_model.save_checkpoint(&method, &checkpoint)?;
    Ok(BenchRow {
        framework: "ptv2 (burn flex)".into(),
        model: model.into(),
        method: method.name().into(),
        seq_len: seq,
        batch_size: args.batch_size,
        train_step_s: median(times),
        eval_seq_per_s: args.batch_size as f64 / median(eval_times),
        peak_rss_mb: peak_rss_mb(),
        checkpoint_bytes: std::fs::metadata(&checkpoint)?.len(),
        trainable,
        threads: ptv2_models::backend::cpu_threads(),
    })
}

fn run_child(args: &BenchArgs, model: &str, method: &str, seq: usize) -> Result<BenchRow> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args([
            "bench",
            "--one",
            "--models",
            model,
            "--methods",
            method,
            "--seq-lens",
            &seq.to_string(),
        ])
        .args([
            "--batch-size",
            &args.batch_size.to_string(),
            "--prompt-len",
            &args.prompt_len.to_string(),
        ])
        .args([
            "--warmup",
            &args.warmup.to_string(),
            "--steps",
            &args.steps.to_string(),
            "--device",
            &args.machine.device,
        ])
        .output()?;
    if !output.status.success() {
        bail!(
            "bench {model} {method} {seq}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The PyTorch rows, when the Python side can import torch and transformers.
fn torch_rows(args: &BenchArgs) -> Result<Vec<BenchRow>> {
    let script = Path::new("tools/reference/bench_torch.py");
    let probe = Command::new(&args.python)
        .args(["-c", "import torch, transformers"])
        .output();
    if !matches!(probe, Ok(ref o) if o.status.success()) || !script.is_file() {
        eprintln!(
            "bench: {} cannot import torch and transformers; PyTorch side skipped",
            args.python
        );
        return Ok(vec![]);
    }
    let cache = args.machine.cache_dir();
    let mut rows = vec![];
    for model in args.models.iter().filter(|m| *m != "tiny") {
        let dir = resolve_model(model, &cache)?.dir;
        for method in &args.methods {
            for seq in &args.seq_lens {
                eprintln!("bench: torch {model} {method} seq {seq}");
                let output = Command::new(&args.python)
                    .arg(script)
                    .args([
                        "--model-dir",
                        &dir.display().to_string(),
                        "--name",
                        model,
                        "--method",
                        method,
                    ])
                    .args([
                        "--seq-len",
                        &seq.to_string(),
                        "--batch-size",
                        &args.batch_size.to_string(),
                    ])
                    .args([
                        "--prompt-len",
                        &args.prompt_len.to_string(),
                        "--warmup",
                        &args.warmup.to_string(),
                    ])
                    .args([
                        "--steps",
                        &args.steps.to_string(),
                        "--threads",
                        &ptv2_models::backend::cpu_threads().to_string(),
                    ])
                    .output()?;
                if !output.status.success() {
                    bail!(
                        "bench_torch.py {model} {method} {seq}: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                rows.push(
                    serde_json::from_slice(&output.stdout)
                        .context("bench_torch.py printed no JSON row")?,
                );
            }
        }
    }
    Ok(rows)
}

fn markdown(rows: &[BenchRow], device: &str) -> String {
    let ours: Vec<&BenchRow> = rows
        .iter()
        .filter(|r| r.framework.starts_with("ptv2"))
        .collect();
    let theirs = |r: &BenchRow| {
        rows.iter().find(|t| {
            t.framework == "pytorch"
                && t.model == r.model
                && t.method == r.method
                && t.seq_len == r.seq_len
        })
    };
    let ft = |r: &BenchRow| {
        ours.iter()
            .find(|f| f.model == r.model && f.seq_len == r.seq_len && f.method == "ft")
            .copied()
    };
    let mut md = format!(
        "# ptv2 benchmark\n\nmachine: {} CPU threads; backend: {device}; git {}; batch {}; medians of the measured steps.\n\n",
        ptv2_models::backend::cpu_threads(),
        crate::io::git_revision(),
        rows.first().map_or(0, |r| r.batch_size)
    );
    md.push_str("| model | method | seq | train step (s) | vs our FT | PyTorch step (s) | ours / PyTorch | eval seq/s | peak RSS MB | vs our FT RSS | checkpoint bytes | vs FT checkpoint | trainable |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &ours {
        let f = ft(r);
        let t = theirs(r);
        let ratio = |a: f64, b: Option<f64>| b.map_or("–".into(), |b| format!("{:.2}", a / b));
        md.push_str(&format!(
            "| {} | {} | {} | {:.3} | {} | {} | {} | {:.1} | {:.0} | {} | {} | {} | {} |\n",
            r.model,
            r.method,
            r.seq_len,
            r.train_step_s,
            ratio(r.train_step_s, f.map(|f| f.train_step_s)),
            t.map_or("–".into(), |t| format!("{:.3}", t.train_step_s)),
            ratio(r.train_step_s, t.map(|t| t.train_step_s)),
            r.eval_seq_per_s,
            r.peak_rss_mb,
            ratio(r.peak_rss_mb, f.map(|f| f.peak_rss_mb)),
            r.checkpoint_bytes,
            ratio(
                r.checkpoint_bytes as f64,
                f.map(|f| f.checkpoint_bytes as f64)
            ),
            r.trainable
        ));
    }
    let torch: Vec<&BenchRow> = rows.iter().filter(|r| r.framework == "pytorch").collect();
    if !torch.is_empty() {
        md.push_str("\nPyTorch rows: ");
        md.push_str(
            &torch
                .iter()
                .map(|t| {
                    format!(
                        "{} {} {}: step {:.3} s, eval {:.1} seq/s, peak RSS {:.0} MB",
                        t.model,
                        t.method,
                        t.seq_len,
                        t.train_step_s,
                        t.eval_seq_per_s,
                        t.peak_rss_mb
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        );
        md.push('\n');
    }
    md
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.one {
        let row = measure(args, &args.models[0], &args.methods[0], args.seq_lens[0])?;
        println!("{}", serde_json::to_string(&row)?);
        return Ok(());
    }
    let mut rows = vec![];
    for model in &args.models {
        for method in &args.methods {
            for &seq in &args.seq_lens {
                eprintln!("bench: ptv2 {model} {method} seq {seq}");
                rows.push(run_child(args, model, method, seq)?);
            }
        }
    }
    rows.extend(torch_rows(args)?);
    let mut csv = String::from("framework,model,method,seq_len,batch_size,train_step_s,eval_seq_per_s,peak_rss_mb,checkpoint_bytes,trainable,threads\n");
    for r in &rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{:.5},{:.3},{:.1},{},{},{}\n",
            r.framework,
            r.model,
            r.method,
            r.seq_len,
            r.batch_size,
            r.train_step_s,
            r.eval_seq_per_s,
            r.peak_rss_mb,
            r.checkpoint_bytes,
            r.trainable,
            r.threads
        ));
    }
    crate::io::write_atomic(&args.out.join("bench.csv"), csv.as_bytes())?;
    let md = markdown(&rows, &args.machine.device);
    crate::io::write_atomic(&args.out.join("bench.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}
