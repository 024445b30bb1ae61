//! The training loop: one run = one model × task × method × hyperparameters × seed.
//!
//! AdamW on the trainable parameters only, global grad-norm clip 1.0, linear decay (optional
//! warmup) or per-epoch exponential decay, dropout on in training and off in evaluation,
//! evaluation on dev every epoch, the best-dev epoch kept. Every random source is seeded. Batches
//! group examples of similar length (`length_grouped_batches`) to pad little.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::GradientsParams;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use ptv2_models::heads::loss;
use ptv2_models::{
    backend, resolve_model, EncoderConfig, Method, MethodInit, ParamCounts, Pretrained,
    TextEncoder, TunedModel,
};

use crate::init_tokens::init_tokens;
use crate::optim::{adamw, clip_global_norm, Schedule};
use crate::tasks::{length_grouped_batches, load_task, DevResult, Task};

/// Everything that defines a run's result. Written as `config.json` beside its checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: String,
    pub task: String,
    #[serde(flatten)]
    pub method: Method,
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Train on this many examples (a fixed random subset, the same for every seed).
    pub max_train: Option<usize>,
    /// Evaluate on the first this-many dev examples.
    pub max_eval: Option<usize>,
    pub max_len: usize,
    /// Dropout on the prefix and before the head (the backbone keeps its config's rates).
    pub dropout: f64,
    pub schedule: Schedule,
}

/// Where a run reads and writes; not part of its identity.
#[derive(Debug, Clone)]
pub struct RunEnv {
    pub cache: PathBuf,
    pub device: String,
    pub data_dir: PathBuf,
    pub out: PathBuf,
    /// Where to draw the per-epoch progress bar; None draws nothing.
    pub progress: Option<MultiProgress>,
    /// Lines about each epoch on stderr.
    pub verbose: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev: Vec<(String, f64)>,
    pub seconds: f64,
}

/// `metrics.json` of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    pub task: String,
    pub method: String,
    pub model: String,
    pub seed: u64,
    pub params: ParamCounts,
    pub trainable_percent: f64,
    pub epochs: Vec<EpochRecord>,
    /// 0-based, as the reference code counts.
    pub best_epoch: usize,
    pub main_metric: String,
    pub best_dev: Vec<(String, f64)>,
    pub train_examples: usize,
    pub dev_examples: usize,
    pub steps: usize,
    pub wall_seconds: f64,
    pub train_steps_per_second: f64,
    pub peak_rss_mb: f64,
    pub checkpoint_bytes: u64,
    pub device: String,
    /// Dev scores of always predicting the training split's most frequent label.
    #[serde(default)]
    pub majority_dev: Option<Vec<(String, f64)>>,
    /// Label names in class order (what the predictions file's labels index), if classes.
    #[serde(default)]
    pub labels: Vec<String>,
}

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const METRICS_FILE: &str = "metrics.json";

/// Peak resident memory of this process so far (VmHWM), in MB; 0 where /proc is not available.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The task with `max_train` / `max_eval` applied (the train subset is a fixed random draw, the
/// same for every seed) and its tokenizer-dependent features prepared.
pub fn load_prepared(
    config: &RunConfig,
    data_dir: &Path,
    text: &TextEncoder,
) -> Result<Box<dyn Task>> {
    let mut task = load_task(&config.task, data_dir)?;
    task.subset(config.max_train, config.max_eval);
    task.prepare(text)?;
    if task.train_len() == 0 || task.dev_len() == 0 {
        bail!("task {}: empty train or dev split", task.name());
    }
    Ok(task)
}

fn method_init(config: &RunConfig, encoder: &EncoderConfig) -> MethodInit {
    MethodInit {
        dropout: config.dropout,
        init_std: encoder.initializer_range,
        init_tokens: None,
    }
}

fn progress_bar(progress: &Option<MultiProgress>, len: usize, prefix: String) -> ProgressBar {
    let Some(multi) = progress else {
        return ProgressBar::hidden();
    };
    let bar = multi.add(ProgressBar::new(len as u64).with_prefix(prefix));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps, {msg}, {elapsed} < {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Train one run, writing `config.json`, `metrics.json`, the best epoch's checkpoint and dev
/// predictions into `env.out` (each file atomically).
pub fn train(config: &RunConfig, env: &RunEnv) -> Result<RunMetrics> {
    // burn's random source is process-wide: two runs drawing from it at once would make each
    // other's dropout masks and inits depend on timing. One run at a time per process keeps
    // "same seed, same scores"; parallel runs use worker processes.
    static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let started = Instant::now();
    let device = backend::device_by_name(&env.device)?;
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);

    let spec = resolve_model(&config.model, &env.cache)?;
    let Pretrained {
        encoder,
        text,
        config: encoder_config,
    } = Pretrained::load(&spec, config.max_len, &train_device)
        .with_context(|| format!("loading model {}", config.model))?;
    let task = load_prepared(config, &env.data_dir, &text)?;
    let init = MethodInit {
        init_tokens: init_tokens(
            config.method.init(),
            config.method.prompt_len(),
            config.seed,
            task.as_ref(),
            &text,
        )?,
        ..method_init(config, &encoder_config)
    };
    let mut model = TunedModel::new(encoder, &config.method, &task.head(), &init, &train_device);
    let params = model.param_counts();
    if env.verbose {
        eprintln!(
            "{} {} on {}: {params}",
            config.task,
            config.method.name(),
            config.model
        );
    }

    std::fs::create_dir_all(&env.out)
        .with_context(|| format!("cannot create {}", env.out.display()))?;
    crate::io::write_json(&env.out.join(CONFIG_FILE), config)?;

    let mut optimizer = adamw();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let steps_per_epoch = task.train_len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    let sizes = task.train_sizes();
    let mut epochs: Vec<EpochRecord> = vec![];
    let mut best: Option<(usize, f64)> = None;
    let mut step = 0;
    let mut train_seconds = 0.0;

    for epoch in 0..config.epochs {
        let epoch_start = Instant::now();
        let batches = length_grouped_batches(&sizes, config.batch_size, &mut rng);
        let bar = progress_bar(
            &env.progress,
            steps_per_epoch,
            format!("epoch {}/{}", epoch + 1, config.epochs),
        );
        let mut loss_sum = 0.0;
        for (i, chunk) in batches.iter().enumerate() {
            let batch = task.train_batch(chunk, &text, &train_device)?;
            let loss_value = loss(model.forward(&batch.input), &batch.targets);
            let grads = loss_value.backward();
            let value = loss_value.into_scalar::<f32>() as f64;
            if !value.is_finite() {
                bail!(
                    "diverged: loss is {value} at epoch {} step {} (try a smaller --lr)",
                    epoch + 1,
                    i + 1
                );
            }
            let mut grads = GradientsParams::from_grads(grads, &model);
            clip_global_norm(&model, &mut grads, 1.0);
            let lr = config.schedule.lr(config.lr, step, total_steps, epoch);
            model = optimizer.step(lr, model, grads);
            step += 1;
            loss_sum += value;
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", loss_sum / (i + 1) as f64));
        }
        bar.finish_and_clear();
        train_seconds += epoch_start.elapsed().as_secs_f64();

        let eval_model = model.valid();
        let result = task.evaluate(&eval_model, &text, &device)?;
        let dev = result.scores.clone();
        let score = dev[0].1;
        let improved = best.is_none_or(|(_, b)| score > b);
        if improved {
            best = Some((epoch, score));
            save_best(&eval_model, config, &result, &env.out)?;
        }
        let train_loss = loss_sum / steps_per_epoch as f64;
        if env.verbose {
            eprintln!(
                "epoch {}/{}: train loss {train_loss:.4}, dev {} {score:.4}{} ({:.0} s)",
                epoch + 1,
                config.epochs,
                dev[0].0,
                if improved { " (best)" } else { "" },
                epoch_start.elapsed().as_secs_f64()
            );
        }
        epochs.push(EpochRecord {
            epoch,
            train_loss,
            dev,
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
    }

    let (best_epoch, _) = best.expect("at least one epoch");
    let metrics = RunMetrics {
        task: config.task.clone(),
        method: config.method.name().into(),
        model: config.model.clone(),
        seed: config.seed,
        params,
        trainable_percent: params.percent(),
        best_dev: epochs[best_epoch].dev.clone(),
        best_epoch,
        main_metric: task.main_metric().into(),
        epochs,
        train_examples: task.train_len(),
        dev_examples: task.dev_len(),
        steps: step,
        wall_seconds: started.elapsed().as_secs_f64(),
        train_steps_per_second: step as f64 / train_seconds.max(1e-9),
        peak_rss_mb: peak_rss_mb(),
        checkpoint_bytes: std::fs::metadata(env.out.join(CHECKPOINT_FILE)).map_or(0, |m| m.len()),
        device: backend::describe(&device),
        majority_dev: task.majority_scores(),
        labels: task.labels(),
    };
    crate::io::write_json(&env.out.join(METRICS_FILE), &metrics)?;
    Ok(metrics)
}

fn save_best(model: &TunedModel, config: &RunConfig, result: &DevResult, out: &Path) -> Result<()> {
    let tmp = out.join(format!(".{CHECKPOINT_FILE}.tmp-{}", std::process::id()));
    model.clone().save_checkpoint(&config.method, &tmp)?;
    std::fs::rename(&tmp, out.join(CHECKPOINT_FILE))
        .context("cannot move checkpoint into place")?;
    crate::io::write_atomic(
        &out.join(result.predictions_file),
        result.predictions.as_bytes(),
    )
}

/// Reload a run's checkpoint and score it on its dev split again.
pub fn evaluate_checkpoint(dir: &Path, env: &RunEnv) -> Result<(RunConfig, Vec<(String, f64)>)> {
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let config: RunConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a ptv2 run config", config_path.display()))?;
    let device = backend::device_by_name(&env.device)?;
    let spec = resolve_model(&config.model, &env.cache)?;
    let Pretrained {
        encoder,
        text,
        config: encoder_config,
    } = Pretrained::load(&spec, config.max_len, &device)?;
    let task = load_prepared(&config, &env.data_dir, &text)?;
    let init = method_init(&config, &encoder_config);
    let mut model = TunedModel::new(
        encoder,
        &config.method.as_saved(),
        &task.head(),
        &init,
        &device,
    );
    model.load_checkpoint(&dir.join(CHECKPOINT_FILE))?;
    Ok((config, task.evaluate(&model, &text, &device)?.scores))
}
