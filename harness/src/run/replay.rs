//! A run replayed in the reference stack (`framework = "pytorch"`): PyTorch, transformers 4.46.3
//! and PEFT 0.11.1 train what ptv2 would, from the same start, on the same batches, at the same
//! learning rates, and ptv2 scores the logits they produce with its own task code. The training
//! loop hands its start to `train_in_pytorch`, which writes a bundle, runs
//! `tools/reference/replay.py` on it and returns where the logits are; the loop scores them.
//!
//! The bundle (`RUN_DIR/replay/`): `replay.json` (`ReplaySpec`), `init.safetensors` (the run's
//! initial checkpoint: prompts, prefix or LoRA factors and head, in ptv2's names), `train.safetensors` (every
//! step's batch, `e{epoch}.s{step}.{input_ids,attention_mask,token_type_ids,labels}`),
//! `eval.safetensors` (the dev batches in the order evaluation asks for them, `b{i}.…`), and
//! what Python writes: `epoch{n}.safetensors` (`b{i}.logits` or `b{i}.start` / `b{i}.end`),
//! `report.json`, `replay.log`. The large files are removed once the run is scored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use ptv2_models::methods::p_tuning_v2::LayerSelection;
use ptv2_models::{
    EncoderInput, HeadKind, Logits, MethodKind, ModelFamily, Targets, TextEncoder, TunedModel,
};
use serde::{Deserialize, Serialize};

use crate::records::io::{read_tensors, write_safetensors, Floats, RawTensor};
use crate::records::run_dir::RunDir;
use crate::records::settings::{Framework, HeadChoice, RunSettings};
use crate::records::signals::Interrupted;
use crate::run::batch_plan::BatchPlan;
use crate::run::tasks::{Batch, Forward, Predictor, Task};

pub const REPLAY_DIR: &str = "replay";
pub const INIT_FILE: &str = "init.safetensors";
const TRAIN_FILE: &str = "train.safetensors";
const EVAL_FILE: &str = "eval.safetensors";
const SPEC_FILE: &str = "replay.json";
const REPORT_FILE: &str = "report.json";
const LOG_FILE: &str = "replay.log";
const SCRIPT_FILE: &str = "replay.py";
/// The reference trainer, carried inside the binary so that any copy of ptv2 can replay.
const SCRIPT: &str = include_str!("../../../tools/reference/replay.py");

/// What the Python trainer needs besides the tensors.
#[derive(Debug, Serialize)]
pub struct ReplaySpec {
    /// The HF model dir, and how many of its layers the run keeps (`name@k`).
    pub model_dir: PathBuf,
    pub num_layers: usize,
    pub method: MethodKind,
    pub prompt_len: usize,
    /// PT: the sequence head reads the first prompt (PEFT's) instead of the real [CLS].
    pub pool_first_prompt: bool,
    /// `sequence`, `regression`, `token` or `span`.
    pub head: &'static str,
    pub num_labels: usize,
    /// Before the head, as ptv2 applies it.
    pub dropout: f64,
    /// P-tuning: PEFT's `encoder_reparameterization_type`.
    pub ptuning_encoder: &'static str,
    /// PEFT's `encoder_hidden_size`: P-tuning's encoder's, prefix-tuning's MLP's.
    pub encoder_hidden: Option<usize>,
    /// On the prefix (PT2): the run's `prefix_dropout`, else its dropout.
    pub prefix_dropout: f64,
    /// The backbone's hidden dropout, where the run sets it (else the model config's).
    pub backbone_dropout: Option<f64>,
    /// LoRA: r, alpha and PEFT's `target_modules` (unused by the other methods).
    pub lora_rank: usize,
    pub lora_alpha: f64,
    pub lora_modules: Vec<&'static str>,
    pub seed: u64,
    /// `peft-native`: PEFT's own model, inits and `DataLoader(shuffle=True)` over `all.*`
    /// (every training unit), batches of `batch_size`; else ptv2's batches `e{epoch}.s{step}.*`.
    pub native: bool,
    pub batch_size: usize,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// The learning rate of every step, in order (ptv2's schedule, computed once).
    pub learning_rates: Vec<f64>,
    pub eval_batches: usize,
    pub threads: usize,
}

/// A run's start as the reference stack gets it: the model ptv2 built for this seed, its task,
/// tokenizer and batch plan.
pub struct ReplayStart<'a> {
    pub settings: &'a RunSettings,
    pub model: TunedModel,
    pub task: &'a dyn Task,
    pub text: &'a TextEncoder,
    pub plan: &'a mut BatchPlan,
    pub device: &'a Device,
    pub model_dir: PathBuf,
}

/// Train the run in PyTorch + PEFT: the same start (saved), the same batches and learning
/// rates (`peft-native`: every training example, PEFT's own start), the dev batches recorded as
/// ptv2's evaluation forms them. Returns the bundle's dir and
/// Python's report; `ReplayedLogits::read` reads each epoch's logits from that dir.
pub fn train_in_pytorch(run: &RunDir, start: ReplayStart) -> Result<(PathBuf, ReplayReport)> {
    let ReplayStart {
        settings,
        model,
        task,
        text,
        plan,
        device,
        model_dir,
    } = start;
    let head = task.head();
    check_supported(settings, &head)?;
    if model.encoder.family() == ModelFamily::DebertaV2 {
        bail!("framework {} cannot train a DeBERTa run (the replay builds BERT and RoBERTa; PEFT's prefix tuning cannot run on DebertaV2Model)", framework_name(settings));
    }
    let dir = run.file(REPLAY_DIR);
    // A replay does not resume: an interrupted one starts over from a new bundle.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let native = settings.framework == Framework::PeftNative;
    // PEFT's own loop starts from its own weights: only the replay needs ptv2's start.
    let model = if native {
        model
    } else {
        model.save_uncollapsed(&dir.join(INIT_FILE))?
    };
    let train = train_batches(native, settings.epochs, task, text, plan, device)?;
    let eval_inputs = dev_batches(&model, task, text, device)?;
    let replay_plan = ReplayPlan {
        model_dir,
        num_layers: model.encoder.num_layers(),
        hidden: model.encoder.hidden_size(),
        steps_per_epoch: plan.steps_per_epoch,
        learning_rates: plan.learning_rates(),
        eval_batches: eval_inputs.len(),
    };
    let spec = ReplaySpec::new(settings, &head, replay_plan);
    write_bundle(&dir, &spec, &train, &eval_inputs)?;
    drop(train);
    let report = run_python(&dir)?;
    Ok((dir, report))
}

/// The training batches Python gets: ptv2's, epoch by epoch (a replay), or every training unit
/// once, padded to the longest (PEFT's own loop draws its own batches from them).
fn train_batches(
    native: bool,
    epochs: usize,
    task: &dyn Task,
    text: &TextEncoder,
    plan: &mut BatchPlan,
    device: &Device,
) -> Result<BTreeMap<String, RawTensor>> {
    let mut train = BTreeMap::new();
    if native {
        let every: Vec<usize> = (0..task.train_sizes().len()).collect();
        let batch = task.train_batch(&every, text, device)?;
        batch_tensors("all", &batch, &mut train);
        return Ok(train);
    }
    for epoch in 0..epochs {
        for (step, chunk) in plan.next_epoch().iter().enumerate() {
            let batch = task.train_batch(chunk, text, device)?;
            batch_tensors(&format!("e{epoch}.s{step}"), &batch, &mut train);
        }
    }
    Ok(train)
}

/// The dev batches exactly as ptv2's evaluation forms them, recorded by running it once.
fn dev_batches(
    model: &TunedModel,
    task: &dyn Task,
    text: &TextEncoder,
    device: &Device,
) -> Result<Vec<EncoderInput>> {
    let eval_model = model.valid();
    let recorder = Recorder {
        model: &eval_model,
        inputs: Default::default(),
    };
    task.evaluate(&Predictor {
        model: &recorder,
        text,
        device,
    })?;
    Ok(recorder.inputs.into_inner().unwrap())
}

/// What a run's schedule and data are, as the trainer gets them besides its settings.
pub struct ReplayPlan {
    pub model_dir: PathBuf,
    pub num_layers: usize,
    /// The model's hidden size H.
    pub hidden: usize,
    pub steps_per_epoch: usize,
    pub learning_rates: Vec<f64>,
    pub eval_batches: usize,
}

impl ReplaySpec {
    pub fn new(settings: &RunSettings, head: &HeadKind, plan: ReplayPlan) -> Self {
        let (head, num_labels) = head_spec(head);
        let tuning = &settings.tuning;
        Self {
            model_dir: plan.model_dir,
            num_layers: plan.num_layers,
            method: tuning.method,
            prompt_len: tuning.prompt_len,
            pool_first_prompt: !tuning.prompt_pool.is_cls(),
            head,
            num_labels,
            dropout: settings.dropout,
            ptuning_encoder: tuning.ptuning_encoder.peft_name(),
            encoder_hidden: settings
                .method()
                .ok()
                .and_then(|m| m.encoder_hidden(plan.hidden)),
            prefix_dropout: tuning.prefix_dropout.unwrap_or(settings.dropout),
            backbone_dropout: settings.backbone_dropout,
            lora_rank: tuning.lora_rank,
            lora_alpha: tuning.lora_alpha,
            lora_modules: tuning
                .lora_targets
                .targets()
                .iter()
                .map(|&t| t.peft_name())
                .collect(),
            seed: settings.seed,
            native: settings.framework == Framework::PeftNative,
            batch_size: settings.batch_size,
            epochs: settings.epochs,
            steps_per_epoch: plan.steps_per_epoch,
            learning_rates: plan.learning_rates,
            eval_batches: plan.eval_batches,
            threads: threads(),
        }
    }
}

/// What the Python trainer reports.
#[derive(Debug, Deserialize)]
pub struct ReplayReport {
    pub epochs: Vec<ReplayEpoch>,
    pub peak_rss_mb: f64,
    /// e.g. `pytorch 2.5.1 cpu, transformers 4.46.3, peft 0.11.1`.
    pub device: String,
}

#[derive(Debug, Deserialize)]
pub struct ReplayEpoch {
    pub train_loss: f64,
    pub seconds: f64,
}

/// The reference stack has this run's method and head, or an error saying what it lacks.
pub fn check_supported(settings: &RunSettings, head: &HeadKind) -> Result<()> {
    let token_or_span = matches!(head, HeadKind::TokenClassification { .. } | HeadKind::Span);
    let o = &settings.tuning;
    let why = if matches!(head, HeadKind::MultipleChoice { .. }) {
        "multiple choice (PEFT's prompt methods have no multiple-choice task type)"
    } else if settings.head == HeadChoice::Verbalizer {
        "the verbalizer head (the replay builds transformers' classification heads)"
    } else if settings.missing_pooler != crate::records::settings::MissingPooler::Cls {
        "missing_pooler random or context (the replay builds transformers' own heads)"
    } else {
        match o.method {
            MethodKind::Pt2 if o.reparam_hidden.is_some() => {
                "a reparameterized prefix (reparam_hidden; the replay starts from the plain prefix)"
            }
            MethodKind::Pt2 if o.prefix_layers != LayerSelection::All => {
                "prefix_layers other than all (PEFT's prefix covers every layer)"
            }
            MethodKind::Pt | MethodKind::Ptuning if token_or_span => {
                "input prompts with a token or span head (PEFT's PT and P-tuning put their prompts among the tokens the head reads)"
            }
            MethodKind::Prompt => "discrete prompting (it trains nothing)",
            MethodKind::Ft
            | MethodKind::Pt
            | MethodKind::Ptuning
            | MethodKind::Pt2
            | MethodKind::Prefix
            | MethodKind::Lora => return Ok(()),
        }
    };
    bail!("framework {} cannot train {why}", framework_name(settings))
}

/// The run's framework as its flag and sweep value spell it (`pytorch`, `peft-native`).
fn framework_name(settings: &RunSettings) -> String {
    use clap::ValueEnum;
    let value = settings.framework.to_possible_value();
    value.map_or_else(String::new, |v| v.get_name().to_string())
}

/// The head's name in `ReplaySpec` and its number of outputs.
pub fn head_spec(head: &HeadKind) -> (&'static str, usize) {
    match head {
        HeadKind::SequenceClassification { num_labels } => ("sequence", *num_labels),
        HeadKind::Regression => ("regression", 1),
        HeadKind::TokenClassification { num_labels } => ("token", *num_labels),
        HeadKind::Span => ("span", 2),
        HeadKind::MultipleChoice { num_choices } => ("multiple_choice", *num_choices),
    }
}

fn ints(tensor: &Tensor<2, Int>) -> RawTensor {
    let values = tensor
        .clone()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("int tensor");
    RawTensor::i64(tensor.dims().to_vec(), &values)
}

/// A batch's input as `{prefix}.input_ids`, `.attention_mask`, `.token_type_ids`.
pub fn input_tensors(prefix: &str, input: &EncoderInput, out: &mut BTreeMap<String, RawTensor>) {
    out.insert(format!("{prefix}.input_ids"), ints(&input.input_ids));
    out.insert(
        format!("{prefix}.attention_mask"),
        ints(&input.attention_mask),
    );
    out.insert(
        format!("{prefix}.token_type_ids"),
        ints(&input.token_type_ids),
    );
}

/// A training batch: its input and its targets as `{prefix}.labels` (`[B]` classes or values,
/// `[B, T]` token labels, `[B, 2]` start and end).
pub fn batch_tensors(prefix: &str, batch: &Batch, out: &mut BTreeMap<String, RawTensor>) {
    input_tensors(prefix, &batch.input, out);
    let labels = match &batch.targets {
        Targets::Classes(classes) => RawTensor::i64(vec![classes.len()], classes),
        Targets::Values(values) => RawTensor::f32(vec![values.len()], values),
        Targets::Tokens(rows) => {
            let flat: Vec<i64> = rows.iter().flatten().copied().collect();
            RawTensor::i64(vec![rows.len(), flat.len() / rows.len().max(1)], &flat)
        }
        Targets::Spans(spans) => {
            let flat: Vec<i64> = spans.iter().flat_map(|&(s, e)| [s, e]).collect();
            RawTensor::i64(vec![spans.len(), 2], &flat)
        }
    };
    out.insert(format!("{prefix}.labels"), labels);
}

/// The bundle's files beside what the caller wrote (`init.safetensors`): the training batches,
/// the recorded dev inputs, the spec and the script.
pub fn write_bundle(
    dir: &Path,
    spec: &ReplaySpec,
    train: &BTreeMap<String, RawTensor>,
    eval_inputs: &[EncoderInput],
) -> Result<()> {
    write_safetensors(&dir.join(TRAIN_FILE), train, None)?;
    let mut eval = BTreeMap::new();
    for (i, input) in eval_inputs.iter().enumerate() {
        input_tensors(&format!("b{i}"), input, &mut eval);
    }
    write_safetensors(&dir.join(EVAL_FILE), &eval, None)?;
    crate::records::io::write_json(&dir.join(SPEC_FILE), spec)?;
    crate::records::io::write_atomic(&dir.join(SCRIPT_FILE), SCRIPT.as_bytes())
}

/// A model in evaluation that also keeps every input it is given, in order: the dev batches
/// exactly as the task's evaluation forms them, for Python to predict.
pub struct Recorder<'a> {
    pub model: &'a dyn Forward,
    pub inputs: Mutex<Vec<EncoderInput>>,
}

impl Forward for Recorder<'_> {
    fn forward(&self, input: &EncoderInput) -> Result<Logits> {
        self.inputs.lock().unwrap().push(input.clone());
        self.model.forward(input)
    }
}

/// Threads for torch: ptv2's own share (`RAYON_NUM_THREADS`, set per sweep worker), else every core.
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The interpreter that replays: `$PTV2_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("PTV2_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Run the Python trainer on the bundle in `dir` (its output in `replay.log`); SIGTERM/SIGINT
/// stop it and end the run with `Interrupted`.
pub fn run_python(dir: &Path) -> Result<ReplayReport> {
    let log = std::fs::File::create(dir.join(LOG_FILE))
        .with_context(|| format!("cannot create {}", dir.join(LOG_FILE).display()))?;
    let python = python();
    let mut child = Command::new(&python)
        .arg(dir.join(SCRIPT_FILE))
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {python} (set PTV2_PYTHON to a Python with torch, transformers==4.46.3, peft==0.11.1)"))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if crate::records::signals::stop_requested() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Interrupted {
                signal_seen_at_epoch: 0,
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !status.success() {
        let text = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "the PyTorch replay ({python} {}) failed ({status}); the end of {}:\n{}\n(PTV2_PYTHON must name a Python with torch, transformers==4.46.3, peft==0.11.1, safetensors)",
            dir.join(SCRIPT_FILE).display(),
            dir.join(LOG_FILE).display(),
            tail.join("\n")
        );
    }
    let path = dir.join(REPORT_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a replay report", path.display()))
}

/// One epoch's logits from Python, handed out batch by batch in the order evaluation asks for
/// them (the order they were recorded in).
pub struct ReplayedLogits {
    tensors: BTreeMap<String, Floats>,
    next: Mutex<usize>,
    device: Device,
}

impl ReplayedLogits {
    pub fn read(dir: &Path, epoch: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            tensors: read_tensors(&dir.join(format!("epoch{epoch}.safetensors")))?,
            next: Mutex::new(0),
            device: device.clone(),
        })
    }

    fn tensor<const D: usize>(&self, name: &str) -> Result<Tensor<D>> {
        let t = self
            .tensors
            .get(name)
            .with_context(|| format!("the replay's logits have no {name}"))?;
        let data = TensorData::new(t.values.clone(), t.shape.clone());
        Ok(Tensor::from_data(data, &self.device))
    }
}

impl Forward for ReplayedLogits {
    fn forward(&self, input: &EncoderInput) -> Result<Logits> {
        let i = {
            let mut next = self.next.lock().unwrap();
            *next += 1;
            *next - 1
        };
        let name = format!("b{i}.logits");
        let logits = match self.tensors.get(&name).map(|t| t.shape.len()) {
            None => Logits::Span {
                start: self.tensor(&format!("b{i}.start"))?,
                end: self.tensor(&format!("b{i}.end"))?,
            },
            Some(3) => Logits::Token(self.tensor(&name)?),
            Some(_) => Logits::Sequence(self.tensor(&name)?),
        };
        let rows = match &logits {
            Logits::Sequence(t) => t.dims()[0],
            Logits::Token(t) => t.dims()[0],
            Logits::Span { start, .. } => start.dims()[0],
        };
        if rows != input.input_ids.dims()[0] {
            bail!(
                "replayed batch {i} has {rows} rows, the dev batch {}: the bundle is not this run's",
                input.input_ids.dims()[0]
            );
        }
        Ok(logits)
    }
}

/// Remove the bundle's large files (tensors), keeping the spec, the script, the report and the log.
pub fn remove_tensors(dir: &Path, epochs: usize) {
    let mut files = vec![INIT_FILE.to_string(), TRAIN_FILE.into(), EVAL_FILE.into()];
    files.extend((1..=epochs).map(|e| format!("epoch{e}.safetensors")));
    for file in files {
        let _ = std::fs::remove_file(dir.join(file));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of(extra: &[(&str, &str)]) -> ReplaySpec {
        let mut values = vec![("task", "sst2"), ("method", "pt2"), ("lr", "0.01")];
        values.extend(extra);
        let settings = RunSettings::from_values(&values, "t").unwrap();
        let plan = ReplayPlan {
            model_dir: "m".into(),
            num_layers: 2,
            hidden: 8,
            steps_per_epoch: 1,
            learning_rates: vec![0.01],
            eval_batches: 1,
        };
        let head = HeadKind::SequenceClassification { num_labels: 2 };
        ReplaySpec::new(&settings, &head, plan)
    }

    #[test]
    fn the_spec_carries_the_prefix_dropout_and_the_framework() {
        let spec = spec_of(&[]);
        assert_eq!(
            (spec.dropout, spec.prefix_dropout, spec.native),
            (0.1, 0.1, false)
        );
        let spec = spec_of(&[("prefix_dropout", "0"), ("framework", "peft-native")]);
        assert_eq!(
            (spec.dropout, spec.prefix_dropout, spec.native),
            (0.1, 0.0, true)
        );
        assert_eq!(spec.batch_size, 16);
    }

    #[test]
    fn a_refusal_names_the_framework_as_its_flag_spells_it() {
        let settings = RunSettings::from_values(
            &[
                ("task", "copa"),
                ("method", "pt2"),
                ("lr", "0.01"),
                ("framework", "peft-native"),
            ],
            "t",
        )
        .unwrap();
        let head = HeadKind::MultipleChoice { num_choices: 2 };
        let err = check_supported(&settings, &head).unwrap_err().to_string();
        assert!(
            err.starts_with("framework peft-native cannot train multiple choice"),
            "{err}"
        );
    }
}
