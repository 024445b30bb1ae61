//! The training loop: one run = one model × task × method × hyperparameters × seed.
//!
//! AdamW on the trainable parameters only, global grad-norm clip 1.0, linear decay (optional
//! warmup) or per-epoch exponential decay, dropout on in training and off in evaluation,
//! evaluation on dev every epoch, the best-dev epoch kept, and the labelled test split (where the
//! task has one) scored with that epoch's checkpoint. Every random source is seeded. Batches are
//! drawn at random (`batching = random`) or group examples of similar length (`grouped`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Device;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use ptv2_models::methods::loss::loss;
use ptv2_models::{
    backend, EncoderCache, MethodInit, ParamCounts, Pretrained, TextEncoder, TunedModel,
};

use crate::records::events::{self, Event};
use crate::records::run_dir::{
    peak_rss_mb, sha256_of, Diverged, RunDir, RunMetrics, CHECKPOINT_FILE, CONFIG_FILE,
    METRICS_FILE, TRAIN_ORDER_FILE,
};
use crate::records::settings::{Framework, RunSettings};
use crate::records::signals::Interrupted;
use crate::run::batch_plan::BatchPlan;
use crate::run::evaluation::{keep_checkpoint, DevScoring, EpochDone};
use crate::run::init_tokens::init_tokens;
use crate::run::optim::{adamw, clip_global_norm};
use crate::run::replay::{self, ReplayStart, ReplayedLogits};
use crate::run::resume::{self, Progress, ResumeState};
use crate::run::setup::{method_init, pretrained_and_task, with_head, with_missing_pooler, RunEnv};
use crate::run::tasks::{Forward, Predictor, Task};
use crate::run::trained::score_test;

/// A test switch for the divergence path (`PTV2_FAULT=nan-loss`): the loss of every run's second
/// step reads as NaN. Nothing else sets it.
fn injected_nan(step: usize) -> bool {
    step == 1 && std::env::var("PTV2_FAULT").is_ok_and(|f| f == "nan-loss")
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

/// A run being trained: its task and tokenizer, the optimizer and what happened so far. The
/// model itself moves through `train_epoch` (burn's optimizer takes it by value);
/// a replay hands the same start and batch plan to the reference stack and scores what returns.
struct Training<'a> {
    settings: &'a RunSettings,
    env: &'a RunEnv,
    out: RunDir,
    task: Box<dyn Task>,
    text: TextEncoder,
    /// The pretrained model's dir (a replay loads it in transformers).
    model_dir: PathBuf,
    device: Device,
    train_device: Device,
    optimizer: burn::optim::ModuleOptimizer,
    /// Each epoch's batches and each step's learning rate.
    plan: BatchPlan,
    /// Steps, epochs and the best so far: what `resume/state.json` stores. Its wall seconds are
    /// those of earlier processes (a resumed run) until it is saved.
    progress: Progress,
    /// `dropout::draws()` when the model was built: the run's own draws are counted from it.
    draw_base: u64,
    /// When this process started the run.
    started: Instant,
}

impl<'a> Training<'a> {
    /// Load the model and the task and build the tuned model, seeded.
    fn start(settings: &'a RunSettings, env: &'a RunEnv) -> Result<(Self, TunedModel)> {
        let device = backend::device_by_name(&env.device)?;
        settings
            .precision
            .check_device(&device, &env.device)
            .map_err(anyhow::Error::msg)?;
        let train_device = device.clone().autodiff();
        train_device.seed(settings.seed);
        let method = settings.method()?;
        let (pretrained, task, model_dir) =
            pretrained_and_task(settings, env, &train_device, &mut EncoderCache::default())?;
        let Pretrained {
            encoder,
            text,
            config: encoder_config,
        } = pretrained;
        let init = MethodInit {
            init_tokens: init_tokens(
                method.init(),
                method.prompt_len(),
                settings.seed,
                task.as_ref(),
                &text,
            )?,
            ..method_init(settings, &encoder_config)
        };
        let encoder = match settings.backbone_dropout {
            Some(rate) => encoder.with_hidden_dropout(rate),
            None => encoder,
        };
        let encoder = with_missing_pooler(encoder, settings, &encoder_config);
        let model = TunedModel::new(encoder, &method, &task.head(), &init, &train_device);
        let model = with_head(
            model,
            task.as_ref(),
            &encoder_config,
            &model_dir,
            &train_device,
        )?;
        let training = Self {
            settings,
            env,
            out: RunDir(env.out.clone()),
            plan: BatchPlan::new(settings, task.train_sizes()),
            model_dir,
            task,
            text,
            device,
            train_device,
            optimizer: adamw(),
            progress: Progress::default(),
            draw_base: 0,
            started: Instant::now(),
        };
        Ok((training, model))
    }

    /// One pass over the training set; returns the model and the mean training loss.
    fn train_epoch(&mut self, mut model: TunedModel, epoch: usize) -> Result<(TunedModel, f64)> {
        if self.settings.tuning.method.trains_nothing() {
            let loss = self.untrained_loss(&model)?;
            return Ok((model, loss));
        }
        let started = Instant::now();
        let s = self.settings;
        let batches = self.plan.next_epoch();
        let prefix = format!("epoch {}/{}", epoch + 1, s.epochs);
        let bar = progress_bar(&self.env.progress, self.plan.steps_per_epoch, prefix);
        let mut loss_sum = 0.0;
        for (i, chunk) in batches.iter().enumerate() {
            if crate::records::signals::stop_requested() {
                let signal_seen_at_epoch = epoch + 1;
                return Err(Interrupted {
                    signal_seen_at_epoch,
                }
                .into());
            }
            let (value, mut grads) = self.batch_gradients(&model, chunk)?;
            let value = if injected_nan(self.progress.step) {
                f64::NAN
            } else {
                value
            };
            if !value.is_finite() {
                let (epoch, step) = (epoch + 1, i + 1);
                return Err(Diverged {
                    loss: value,
                    epoch,
                    step,
                }
                .into());
            }
            clip_global_norm(&model, &mut grads, 1.0);
            let lr = self.plan.lr_at(self.progress.step);
            model = self.optimizer.step(lr, model, grads);
            self.progress.step += 1;
            loss_sum += value;
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", loss_sum / (i + 1) as f64));
            if events::heartbeat_due() {
                self.heartbeat(epoch, i + 1, loss_sum / (i + 1) as f64);
            }
        }
        bar.finish_and_clear();
        self.progress.train_seconds += started.elapsed().as_secs_f64();
        Ok((model, loss_sum / self.plan.steps_per_epoch as f64))
    }

    /// Off a terminal, a line inside a long epoch (`events::HEARTBEAT`).
    fn heartbeat(&self, epoch: usize, step: usize, train_loss: f64) {
        if let Some(run_id) = events::current_run() {
            events::emit(&Event::Step {
                run_id: &run_id,
                epoch: epoch + 1,
                epochs: self.settings.epochs,
                step,
                steps: self.plan.steps_per_epoch,
                train_loss,
            });
        }
    }

    /// A method that trains nothing (zero-shot) passes over the training set once without
    /// dropout or updates: its "training loss" is the pretrained model's loss on those examples.
    fn untrained_loss(&mut self, model: &TunedModel) -> Result<f64> {
        let eval_model = model.valid();
        let batches = self.plan.next_epoch();
        let mut sum = 0.0;
        for chunk in &batches {
            let batch = self.task.train_batch(chunk, &self.text, &self.device)?;
            let value = loss(eval_model.forward(&batch.input), &batch.targets);
            sum += value.into_scalar::<f32>() as f64;
        }
        Ok(sum / batches.len().max(1) as f64)
    }

    /// One batch's mean loss and its gradients: in one pass, or (`grad_accum` k > 1) summed over
    /// k slices, each slice's loss weighted by its share of the batch's examples.
    fn batch_gradients(
        &self,
        model: &TunedModel,
        chunk: &[usize],
    ) -> Result<(f64, GradientsParams)> {
        let slice_len = chunk
            .len()
            .div_ceil(self.settings.grad_accum.min(chunk.len()));
        let mut accumulator = GradientsAccumulator::<TunedModel>::new();
        let mut loss_sum = 0.0;
        for slice in chunk.chunks(slice_len) {
            let batch = self
                .task
                .train_batch(slice, &self.text, &self.train_device)?;
            let mut loss_value = loss(model.forward(&batch.input), &batch.targets);
            if slice.len() < chunk.len() {
                loss_value = loss_value.mul_scalar(slice.len() as f64 / chunk.len() as f64);
            }
            let grads = loss_value.backward();
            loss_sum += loss_value.into_scalar::<f32>() as f64;
            accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
        }
        Ok((loss_sum, accumulator.grads()))
    }

    /// Score dev as `ptv2 eval` will score the checkpoint (LoRA's factors merged); a new best
    /// epoch's weights become the checkpoint.
    fn evaluate(&mut self, model: &TunedModel, done: EpochDone) -> Result<()> {
        let eval_model = model.valid();
        let merged = eval_model.clone().merged();
        if self.score_epoch(&merged, done)? {
            keep_checkpoint(&self.out, eval_model)?;
        }
        Ok(())
    }

    /// Score dev with `model` and record the epoch; true for a new best epoch.
    fn score_epoch(&mut self, model: &dyn Forward, done: EpochDone) -> Result<bool> {
        let scoring = DevScoring {
            out: &self.out,
            task: self.task.as_ref(),
            epochs: self.settings.epochs,
            verbose: self.env.verbose,
        };
        let with = Predictor {
            model,
            text: &self.text,
            device: &self.device,
        };
        scoring.score(&with, done, &mut self.progress)
    }

    /// Go on from a saved state: its weights and moments, the batch order and burn's generator
    /// replayed to where they were.
    fn resume(&mut self, state: ResumeState, model: TunedModel) -> Result<TunedModel> {
        let optimizer = std::mem::replace(&mut self.optimizer, adamw());
        let (model, optimizer) = resume::restore(&self.out, &state, model, optimizer)?;
        self.optimizer = optimizer;
        let done = state.progress.epochs_done();
        for _ in 0..done {
            self.plan.next_epoch();
        }
        ptv2_models::dropout::replay_draws(&self.train_device, state.progress.dropout_draws);
        if self.env.verbose {
            eprintln!("resuming after epoch {done}");
        }
        self.progress = state.progress;
        Ok(model)
    }

    /// What `resume` needs after the epochs done so far.
    fn save_state(&self, model: &TunedModel) -> Result<()> {
        let progress = Progress {
            wall_seconds: self.wall_seconds(),
            dropout_draws: ptv2_models::dropout::draws() - self.draw_base,
            ..self.progress.clone()
        };
        let state = ResumeState {
            settings: self.settings.clone(),
            progress,
        };
        resume::save(&self.out, &state, model, &self.optimizer)
    }

    fn wall_seconds(&self) -> f64 {
        self.progress.wall_seconds + self.started.elapsed().as_secs_f64()
    }

    fn metrics(self, params: ParamCounts) -> Result<RunMetrics> {
        crate::records::io::write_json(
            &self.out.file(TRAIN_ORDER_FILE),
            &TrainOrder {
                train_units: self.task.train_len(),
                epochs: &self.plan.order,
            },
        )?;
        let (best_epoch, _) = self.progress.best.expect("at least one epoch");
        let wall_seconds = self.wall_seconds();
        Ok(RunMetrics {
            task: self.settings.task.clone(),
            method: self.settings.tuning.method,
            model: self.settings.model.clone(),
            seed: self.settings.seed,
            params,
            trainable_percent: params.percent(),
            best_dev: self.progress.epochs[best_epoch].dev.clone(),
            best_epoch: best_epoch + 1,
            main_metric: self.task.main_metric().into(),
            epochs: self.progress.epochs,
            train_examples: self.task.train_len(),
            dev_examples: self.task.dev_len(),
            steps: self.progress.step,
            wall_seconds,
            train_steps_per_second: self.progress.step as f64
                / self.progress.train_seconds.max(1e-9),
            peak_rss_mb: peak_rss_mb(),
            checkpoint_sha256: sha256_of(&self.out.file(CHECKPOINT_FILE)),
            checkpoint_bytes: std::fs::metadata(self.out.file(CHECKPOINT_FILE))
                .map_or(0, |m| m.len()),
            device: backend::describe(&self.device),
            majority_dev: self.task.majority_scores(),
            labels: self.task.labels(),
            best_test: None,
        })
    }
}

/// `train_order.json`: which training units (indices into the training split after
/// `max_train`/`subset`; QA: windows) each step of each epoch took, in order.
#[derive(serde::Serialize)]
struct TrainOrder<'a> {
    train_units: usize,
    epochs: &'a Vec<Vec<Vec<usize>>>,
}

/// Train one run, writing `config.json`, `metrics.json`, the best epoch's checkpoint and dev
/// predictions into `env.out` (each file atomically). A loss that is not finite ends the run
/// with a `Diverged` error; SIGTERM/SIGINT (after `signals::install`) with `Interrupted`. A run
/// whose dir holds a saved state of the same settings resumes after its last finished epoch.
pub fn train(settings: &RunSettings, env: &RunEnv) -> Result<RunMetrics> {
    // burn's random source is process-wide: two runs drawing from it at once would make each
    // other's dropout masks and inits depend on timing. One run at a time per process keeps
    // "same seed, same scores"; parallel runs use worker processes.
    static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let started = Instant::now();
    // The output dir first: an unwritable one fails before minutes of loading.
    std::fs::create_dir_all(&env.out)
        .with_context(|| format!("cannot create {}", env.out.display()))?;
    crate::records::io::write_json(&env.out.join(CONFIG_FILE), settings)?;
    if settings.framework != Framework::Ptv2 {
        return replayed(settings, env, started);
    }
    let (mut run, mut model) = Training::start(settings, env)?;
    run.started = started;
    // Counting visits every parameter, which materializes burn's lazily initialized weights in
    // one fixed order before any dropout mask is drawn: keep it here (same seed, same scores).
    let params = model.param_counts();
    run.draw_base = ptv2_models::dropout::draws();
    match resume::load(&run.out, settings)? {
        Some(state) => model = run.resume(state, model)?,
        None => resume::clear(&run.out),
    }
    if env.verbose {
        eprintln!(
            "{} {} on {}: {params}",
            settings.task, settings.tuning.method, settings.model
        );
    }
    // A search's rung stops early; the schedule (warmup, decay) stays the full run's.
    let stop = env
        .stop_after
        .map_or(settings.epochs, |e| e.min(settings.epochs));
    for epoch in run.progress.epochs.len()..stop {
        let epoch_start = Instant::now();
        let train_loss;
        (model, train_loss) = run.train_epoch(model, epoch)?;
        let done = EpochDone {
            epoch,
            train_loss,
            began: epoch_start,
        };
        run.evaluate(&model, done)?;
        if epoch + 1 < settings.epochs {
            run.save_state(&model)?;
        }
    }
    finish(run, params, env)
}

/// Write the run's metrics; a finished run (not one stopped at a rung) is scored on the test
/// split where the task has one, and its saved state goes.
fn finish(run: Training, params: ParamCounts, env: &RunEnv) -> Result<RunMetrics> {
    let out = run.out.clone();
    let finished = run.progress.epochs_done() == run.settings.epochs;
    let mut metrics = run.metrics(params)?;
    crate::records::io::write_json(&env.out.join(METRICS_FILE), &metrics)?;
    if !finished {
        // Stopped at a rung: the curve so far is in metrics.json, the state stays to go on from.
        return Ok(metrics);
    }
    if let Some(test) = score_test(&env.out, env)? {
        metrics.best_test = Some(test);
        crate::records::io::write_json(&env.out.join(METRICS_FILE), &metrics)?;
    }
    resume::clear(&out);
    Ok(metrics)
}

/// The run trained by the reference stack (`replay.rs`): from this run's start and batches
/// (`pytorch`), or PEFT's own way (`peft-native`); each epoch's logits come back and are scored
/// here like ptv2's own. No checkpoint: the trained weights stay on the PyTorch side.
fn replayed(settings: &RunSettings, env: &RunEnv, started: Instant) -> Result<RunMetrics> {
    let (mut run, model) = Training::start(settings, env)?;
    run.started = started;
    let params = model.param_counts();
    let start = ReplayStart {
        settings,
        model,
        task: run.task.as_ref(),
        text: &run.text,
        plan: &mut run.plan,
        device: &run.device,
        model_dir: run.model_dir.clone(),
    };
    let (dir, report) = replay::train_in_pytorch(&run.out, start)?;
    for (epoch, done) in report.epochs.iter().enumerate() {
        let logits = ReplayedLogits::read(&dir, epoch + 1, &run.device)?;
        run.progress.step += run.plan.steps_per_epoch;
        run.progress.train_seconds += done.seconds;
        let began = Instant::now() - Duration::from_secs_f64(done.seconds);
        let train_loss = done.train_loss;
        run.score_epoch(
            &logits,
            EpochDone {
                epoch,
                train_loss,
                began,
            },
        )?;
    }
    let mut metrics = run.metrics(params)?;
    metrics.device = report.device;
    metrics.peak_rss_mb = metrics.peak_rss_mb.max(report.peak_rss_mb);
    crate::records::io::write_json(&env.out.join(METRICS_FILE), &metrics)?;
    replay::remove_tensors(&dir, settings.epochs);
    Ok(metrics)
}
