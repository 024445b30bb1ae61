//! The measurement behind `ptv2 bench`: train-step time, evaluation throughput, peak memory and checkpoint size of FT, PT
//! and PT2, on MiniLM-L6 and on a tiny random BERT, with PyTorch's numbers beside ours when torch
//! is importable (`tools/reference/bench_torch.py`, same model, batch, length and thread count).
//!
//! Each measurement runs in its own process (`ptv2 bench --one …`) so that peak RSS belongs to one
//! method alone, ours and PyTorch's of one configuration back to back so that both see the same
//! machine. Times are medians over the measured steps after warm-up steps. A GEMM micro-benchmark
//! in the same run gives the machine's achievable GFLOP/s, against which each step's is shown.
//! `PTV2_BENCH_PART=train` or `eval` measures only that part (to profile one under `perf`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use ptv2_models::methods::loss::loss;
use ptv2_models::methods::PromptPlace;
use ptv2_models::{
    backend, resolve_model, Encoder, EncoderConfig, EncoderInput, HeadKind, Method, MethodInit,
    MethodKind, MethodOptions, Precision, Pretrained, Targets, TunedModel,
};

use crate::records::run_dir::peak_rss_mb;
use crate::run::optim::{adamw, clip_global_norm};

/// What to measure (every model × method × length) and where the tables go.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Embedded names or dirs, `tiny` (a random 2-layer BERT) or `config:PATH` (random weights).
    pub models: Vec<String>,
    pub methods: Vec<MethodKind>,
    /// Tokens per example; every example of a batch has them all.
    pub seq_lens: Vec<usize>,
    pub batch_size: usize,
    /// P of PT and PT2.
    pub prompt_len: usize,
    /// Steps run before the measured ones, and the measured ones (their median is reported).
    pub warmup: usize,
    pub steps: usize,
    /// Where bench.csv, bench.md and the chart go.
    pub out: PathBuf,
    /// The `--device` name, and where embedded models are fetched to.
    pub device: String,
    /// The frozen backbone's precision (PT, PT2, LoRA; FT stays f32).
    pub precision: Precision,
    pub cache: PathBuf,
    /// Python that runs the PyTorch side.
    pub python: String,
    /// Measure the first model × method × length in this process and print it as JSON: what
    /// each child process (`ptv2 bench --one …`) does, so that its peak RSS is one method's.
    pub one: bool,
}

/// One measurement, ours or PyTorch's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub framework: String,
    pub model: String,
    pub method: MethodKind,
    pub seq_len: usize,
    pub batch_size: usize,
    pub train_step_s: f64,
    pub eval_seq_per_s: f64,
    pub peak_rss_mb: f64,
    pub checkpoint_bytes: u64,
    pub trainable: usize,
    pub threads: usize,
    /// Floating-point work of a train step and of an eval batch (`step_gflop`); PyTorch's rows
    /// take ours, they do the same work.
    #[serde(default)]
    pub train_gflop: f64,
    #[serde(default)]
    pub eval_gflop: f64,
    /// The frozen backbone's precision (FT's rows: f32).
    #[serde(default)]
    pub precision: Precision,
    /// What the device's allocator holds after the steps, in MB (GPU backends; the pools keep
    /// their pages, so this is the steps' peak).
    #[serde(default)]
    pub device_mb: Option<f64>,
}

/// The matmul work of one batch, in GFLOP: forward F = 2·tokens·layers·(4H² + 2HI + 2·keys·H)
/// (Q, K, V, output, the two FFN matmuls, scores and weighted values); a train step is 3F for FT
/// (input and weight gradients) and 2F for PT and PT2 (a frozen weight needs no gradient).
/// PT's prompts are extra tokens; PT2's prefix extra keys only.
pub fn step_gflop(
    config: &EncoderConfig,
    method: MethodKind,
    batch: usize,
    seq: usize,
    prompts: usize,
) -> (f64, f64) {
    let (tokens, keys) = match method.facts().prompts {
        PromptPlace::Input => (seq + prompts, seq + prompts),
        PromptPlace::EveryLayer => (seq, seq + prompts),
        PromptPlace::None => (seq, seq),
    };
    let (h, i) = (config.hidden_size as f64, config.intermediate_size as f64);
    let per_token = 4.0 * h * h + 2.0 * h * i + 2.0 * keys as f64 * h;
    let forward = 2.0 * (batch * tokens) as f64 * config.num_hidden_layers as f64 * per_token / 1e9;
    // A frozen weight needs no weight gradient: 2 of the 3 matmul passes.
    let train = if method.freezes_backbone() {
        2.0 * forward
    } else {
        3.0 * forward
    };
    (train, forward)
}

/// GFLOP/s of burn flex's f32 matmul `[m, k] × [k, n]` on this machine (median of 7 after 2).
pub fn gemm_gflops(m: usize, k: usize, n: usize) -> f64 {
    let device = Device::flex();
    let a = Tensor::<2>::random([m, k], burn::tensor::Distribution::Default, &device);
    let b = Tensor::<2>::random([k, n], burn::tensor::Distribution::Default, &device);
    let times: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            let _ = a.clone().matmul(b.clone()).into_data();
            start.elapsed().as_secs_f64()
        })
        .skip(2)
        .collect();
    2.0 * (m * k * n) as f64 / median(times) / 1e9
}

/// The machine as bench.md names it: CPU model, the vector ISA ptv2's kernels chose, threads.
fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let bf16_products = if ptv2_models::kernels::amx_available() {
        "AMX tiles"
    } else {
        "burn's product through f32 (no AMX)"
    };
    format!(
        "{cpu}, {} (ptv2's kernels and gemm's, chosen at run time), bf16 products on {bf16_products}, {} CPU threads",
        ptv2_models::kernels::Isa::detect().name(),
        ptv2_models::backend::cpu_threads()
    )
}

/// NaN for no values (a part `PTV2_BENCH_PART` left out).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn random_input(batch: usize, seq: usize, vocab: usize, device: &Device) -> EncoderInput {
    let mut rng = StdRng::seed_from_u64(0);
    let ids: Vec<i64> = (0..batch * seq)
        .map(|_| rng.random_range(1000..vocab as i64))
        .collect();
    EncoderInput::from_rows(ids, vec![1; batch * seq], [batch, seq], device)
}

fn encoder_of(model: &str, cache: &Path, device: &Device) -> Result<(EncoderConfig, Encoder)> {
    if model == "tiny" {
        let mut config = EncoderConfig::tiny_bert();
        config.vocab_size = 2000;
        config.max_position_embeddings = 512;
        let encoder = Encoder::init(&config, true, device);
        return Ok((config, encoder));
    }
    if let Some(path) = model.strip_prefix("config:") {
        let config = EncoderConfig::from_file(Path::new(path))?;
        let encoder = Encoder::init(&config, true, device);
        return Ok((config, encoder));
    }
    let spec = resolve_model(model, cache)?;
    let pretrained = Pretrained::load(&spec, 512, device)?;
    Ok((pretrained.config, pretrained.encoder))
}

/// The burn backend a `--device` name runs on, for the rows' framework column.
fn backend_name(device: &str) -> &str {
    match device {
        "cpu" | "flex" => "flex",
        other => other,
    }
}

/// The benchmarked model: `model`'s encoder with `method` and a two-class sequence head.
fn bench_model(
    args: &BenchConfig,
    model: &str,
    method: MethodKind,
    device: &Device,
) -> Result<(EncoderConfig, TunedModel)> {
    let (config, encoder) = encoder_of(model, &args.cache, device)?;
    let options = MethodOptions {
        prompt_len: args.prompt_len,
        ..MethodOptions::neutral(method)
    };
    let method = Method::from_options(&options).map_err(anyhow::Error::msg)?;
    let init = MethodInit {
        dropout: 0.1,
        init_std: config.initializer_range,
        precision: args.precision,
        ..MethodInit::default()
    };
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let tuned = TunedModel::new(encoder, &method, &head, &init, device);
    Ok((config, tuned))
}

/// Measure one model × method × length in this process.
pub fn measure(
    args: &BenchConfig,
    model: &str,
    method: MethodKind,
    seq: usize,
) -> Result<BenchRow> {
    let device = backend::device_by_name(&args.device)?;
    let train_device = device.clone().autodiff();
    train_device.seed(0);
    let (config, tuned) = bench_model(args, model, method, &train_device)?;
    let method = tuned.kind;
    let trainable = tuned.param_counts().trainable;
    let (train_gflop, eval_gflop) =
        step_gflop(&config, method, args.batch_size, seq, args.prompt_len);
    let input = random_input(args.batch_size, seq, config.vocab_size, &train_device);
    let targets = Targets::Classes((0..args.batch_size as i64).map(|i| i % 2).collect());
    let part = std::env::var("PTV2_BENCH_PART").unwrap_or_default();
    let steps = if part == "eval" {
        0
    } else {
        args.warmup + args.steps
    };
    let (tuned, times) = train_steps(tuned, &input, &targets, steps, args.warmup);
    let eval_model = tuned.valid();
    let eval_seq_per_s = if part == "train" {
        f64::NAN
    } else {
        eval_rate(args, &eval_model, &config, seq, &device)
    };
    let device_mb = device
        .memory_pool_usage()
        .map(|usage| usage.bytes_reserved as f64 / 1e6);
    let tmp = tempfile::tempdir()?;
    let checkpoint = tmp.path().join("checkpoint.safetensors");
    eval_model.save_checkpoint(&checkpoint)?;
    Ok(BenchRow {
        framework: format!("ptv2 (burn {})", backend_name(&args.device)),
        model: model.into(),
        method,
        seq_len: seq,
        batch_size: args.batch_size,
        train_step_s: median(times),
        eval_seq_per_s,
        peak_rss_mb: peak_rss_mb(),
        checkpoint_bytes: std::fs::metadata(&checkpoint)?.len(),
        trainable,
        threads: ptv2_models::backend::cpu_threads(),
        train_gflop,
        eval_gflop,
        precision: args.precision.of_backbone(method),
        device_mb,
    })
}

/// `steps` AdamW steps on one batch; the times of those after the first `warmup`.
fn train_steps(
    mut tuned: TunedModel,
    input: &EncoderInput,
    targets: &Targets,
    steps: usize,
    warmup: usize,
) -> (TunedModel, Vec<f64>) {
    let device = input.input_ids.device();
    let mut optimizer = adamw();
    let mut times = vec![];
    for step in 0..steps {
        let start = Instant::now();
        let grads = loss(tuned.forward(input), targets).backward();
        let mut grads = GradientsParams::from_grads(grads, &tuned);
        clip_global_norm(&tuned, &mut grads, 1.0);
        tuned = optimizer.step(1e-4, tuned, grads);
        device.sync().ok();
        if step >= warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    (tuned, times)
}

/// Evaluation's sequences per second: forward only, dropout off, on the inference device.
fn eval_rate(
    args: &BenchConfig,
    model: &TunedModel,
    config: &EncoderConfig,
    seq: usize,
    device: &Device,
) -> f64 {
    let input = random_input(args.batch_size, seq, config.vocab_size, device);
    let times: Vec<f64> = (0..args.warmup + args.steps)
        .map(|_| {
            let start = Instant::now();
            let _ = model.forward(&input);
            device.sync().ok();
            start.elapsed().as_secs_f64()
        })
        .skip(args.warmup)
        .collect();
    args.batch_size as f64 / median(times)
}

fn run_child(args: &BenchConfig, model: &str, method: MethodKind, seq: usize) -> Result<BenchRow> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args([
            "bench",
            "--one",
            "--models",
            model,
            "--methods",
            method.name(),
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
            &args.device,
            "--precision",
            args.precision.name(),
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

/// Whether the Python side can run (torch and transformers importable, the script present).
fn torch_available(args: &BenchConfig) -> bool {
    let probe = Command::new(&args.python)
        .args(["-c", "import torch, transformers"])
        .output();
    let ok = matches!(probe, Ok(ref o) if o.status.success()) && Path::new(TORCH_SCRIPT).is_file();
    if !ok {
        eprintln!(
            "bench: {} cannot import torch and transformers; PyTorch side skipped",
            args.python
        );
    }
    ok
}

const TORCH_SCRIPT: &str = "tools/reference/bench_torch.py";

/// PyTorch's row for one model × method × length.
fn torch_row(args: &BenchConfig, model: &str, method: MethodKind, seq: usize) -> Result<BenchRow> {
    let dir = resolve_model(model, &args.cache)?.dir;
    let output = Command::new(&args.python)
        .arg(TORCH_SCRIPT)
        .args(["--model-dir", &dir.display().to_string(), "--name", model])
        .args(["--method", method.name(), "--seq-len", &seq.to_string()])
        .args(["--batch-size", &args.batch_size.to_string()])
        .args(["--prompt-len", &args.prompt_len.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args([
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
    serde_json::from_slice(&output.stdout).context("bench_torch.py printed no JSON row")
}

/// The machine's GEMM speed, measured in the same run as the steps.
struct GemmPeak {
    /// 1024 × 1024 × 1024: what the GEMM kernels reach on a large, square problem.
    square: f64,
    /// MiniLM's FFN at batch 16 × 128 tokens: 2048 × 384 × 1536.
    ffn: f64,
}

/// PyTorch's row of the same model, method and length as our `r`.
fn pytorch_row<'a>(rows: &'a [BenchRow], r: &BenchRow) -> Option<&'a BenchRow> {
    rows.iter().find(|t| {
        t.framework == "pytorch"
            && t.model == r.model
            && t.method == r.method
            && t.seq_len == r.seq_len
    })
}

fn ratio(a: f64, b: Option<f64>) -> String {
    b.map_or("–".into(), |b| format!("{:.2}", a / b))
}

fn markdown(rows: &[BenchRow], device: &str, peak: &GemmPeak) -> String {
    let ours: Vec<&BenchRow> = rows
        .iter()
        .filter(|r| r.framework.starts_with("ptv2"))
        .collect();
    let theirs = |r: &BenchRow| pytorch_row(rows, r);
    let ft = |r: &BenchRow| {
        ours.iter()
            .find(|f| f.model == r.model && f.seq_len == r.seq_len && f.method == MethodKind::Ft)
            .copied()
    };
    let mut md = format!(
        "# ptv2 benchmark\n\nmachine: {}; backend: {device}; frozen backbones in {}; git {}; batch {}; medians of the measured steps; \
         ours and PyTorch's of each configuration measured back to back.\n\n\
         GEMM micro-benchmark (burn flex f32 matmul, same run): 1024×1024×1024 {:.1} GFLOP/s (the peak below); \
         2048×384×1536 (MiniLM's FFN at 16 × 128 tokens) {:.1} GFLOP/s.\n\n",
        machine_line(),
        rows.iter()
            .find(|r| r.framework.starts_with("ptv2") && r.method.freezes_backbone())
            .map_or(Precision::F32, |r| r.precision),
        crate::records::io::git_revision(),
        rows.first().map_or(0, |r| r.batch_size),
        peak.square,
        peak.ffn,
    );
    md.push_str("| model | method | seq | train step (s) | vs our FT | PyTorch step (s) | ours / PyTorch | step GFLOP/s (ours, PyTorch) | of GEMM peak (ours) | eval seq/s (ours, PyTorch) | eval ours / PyTorch | peak RSS MB (ours, PyTorch) | vs our FT RSS | checkpoint bytes | vs FT checkpoint | trainable |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &ours {
        let (f, t) = (ft(r), theirs(r));
        let rate = |step: f64| r.train_gflop / step;
        md.push_str(&format!(
            "| {} | {} | {} | {:.3} | {} | {} | {} | {:.1}, {} | {:.0}% | {:.1}, {} | {} | {:.0}, {} | {} | {} | {} | {} |\n",
            r.model,
            r.method,
            r.seq_len,
            r.train_step_s,
            ratio(r.train_step_s, f.map(|f| f.train_step_s)),
            t.map_or("–".into(), |t| format!("{:.3}", t.train_step_s)),
            ratio(r.train_step_s, t.map(|t| t.train_step_s)),
            rate(r.train_step_s),
            t.map_or("–".into(), |t| format!("{:.1}", rate(t.train_step_s))),
            100.0 * rate(r.train_step_s) / peak.square,
            r.eval_seq_per_s,
            t.map_or("–".into(), |t| format!("{:.1}", t.eval_seq_per_s)),
            ratio(r.eval_seq_per_s, t.map(|t| t.eval_seq_per_s)),
            r.peak_rss_mb,
            t.map_or("–".into(), |t| format!("{:.0}", t.peak_rss_mb)),
            ratio(r.peak_rss_mb, f.map(|f| f.peak_rss_mb)),
            r.checkpoint_bytes,
            ratio(r.checkpoint_bytes as f64, f.map(|f| f.checkpoint_bytes as f64)),
            r.trainable
        ));
    }
    md.push_str(
        "\nGFLOP per step counts the matmuls (`step_gflop` in harness/src/bench/train_step.rs): FT 3× the \
         forward pass, PT and PT2 2× (no weight gradients for the frozen backbone).\n",
    );
    md
}

/// Ours against PyTorch as time ratios (train step; eval batch), for the chart.
fn chart_bars(rows: &[BenchRow]) -> Vec<crate::reporting::charts::RatioBar> {
    let ours = rows
        .iter()
        .filter(|r| r.framework.starts_with("ptv2") && r.model != "tiny");
    ours.filter_map(|r| {
        let t = pytorch_row(rows, r)?;
        Some(crate::reporting::charts::RatioBar {
            label: match r.precision {
                Precision::F32 => format!("{} {}", r.method.facts().short, r.seq_len),
                half => format!("{} {} {half}", r.method.facts().short, r.seq_len),
            },
            train: r.train_step_s / t.train_step_s,
            eval: t.eval_seq_per_s / r.eval_seq_per_s,
        })
    })
    .collect()
}

pub fn run(args: &BenchConfig) -> Result<()> {
    if args.one {
        let row = measure(args, &args.models[0], args.methods[0], args.seq_lens[0])?;
        println!("{}", serde_json::to_string(&row)?);
        return Ok(());
    }
    let torch = torch_available(args);
    let mut rows = vec![];
    for model in &args.models {
        for &method in &args.methods {
            for &seq in &args.seq_lens {
                eprintln!("bench: ptv2 {model} {method} seq {seq}");
                let ours = run_child(args, model, method, seq)?;
                if torch && model != "tiny" && !model.starts_with("config:") {
                    eprintln!("bench: torch {model} {method} seq {seq}");
                    let mut row = torch_row(args, model, method, seq)?;
                    (row.train_gflop, row.eval_gflop) = (ours.train_gflop, ours.eval_gflop);
                    rows.push(row);
                }
                rows.push(ours);
            }
        }
    }
    eprintln!("bench: GEMM micro-benchmark");
    let peak = GemmPeak {
        square: gemm_gflops(1024, 1024, 1024),
        ffn: gemm_gflops(2048, 384, 1536),
    };
    write_results(args, &rows, &peak)
}

fn write_results(args: &BenchConfig, rows: &[BenchRow], peak: &GemmPeak) -> Result<()> {
    let mut csv = String::from("framework,model,method,seq_len,batch_size,train_step_s,eval_seq_per_s,peak_rss_mb,checkpoint_bytes,trainable,threads,train_gflop,eval_gflop,precision,device_mb\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{:.5},{:.3},{:.1},{},{},{},{:.2},{:.2},{},{}\n",
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
            r.threads,
            r.train_gflop,
            r.eval_gflop,
            r.precision,
            r.device_mb.map_or(String::new(), |mb| format!("{mb:.1}"))
        ));
    }
    crate::records::io::write_atomic(&args.out.join("bench.csv"), csv.as_bytes())?;
    let md = markdown(rows, &args.device, peak);
    crate::records::io::write_atomic(&args.out.join("bench.md"), md.as_bytes())?;
    let bars = chart_bars(rows);
    if !bars.is_empty() {
        let chart = crate::reporting::charts::draw_bench(&bars, &args.out.join("bench"))?;
        eprintln!("bench: chart {}", chart.display());
    }
    println!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minilm_ft_step_is_about_140_gflop() {
        let mut minilm = EncoderConfig::tiny_bert();
        (
            minilm.hidden_size,
            minilm.intermediate_size,
            minilm.num_hidden_layers,
        ) = (384, 1536, 6);
        let (ft_train, forward) = step_gflop(&minilm, MethodKind::Ft, 16, 128, 16);
        // 2 · 2048 tokens · 6 layers · (4·384² + 2·384·1536 + 2·128·384) = 45.9 GFLOP forward.
        assert!((forward - 45.90).abs() < 0.01, "{forward}");
        assert!((ft_train - 3.0 * forward).abs() < 1e-9);
        let (pt2_train, pt2_forward) = step_gflop(&minilm, MethodKind::Pt2, 16, 128, 16);
        assert!(pt2_forward > forward && pt2_train < ft_train);
        let (_, pt_forward) = step_gflop(&minilm, MethodKind::Pt, 16, 128, 16);
        assert!(pt_forward > pt2_forward, "PT's prompts are tokens too");
    }
}
