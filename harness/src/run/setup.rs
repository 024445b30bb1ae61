//! What every use of a run loads before it trains, scores or serves: where it reads and writes,
//! its pretrained model and its task, subset and prepared, and the model changes its settings ask
//! for (a pooler where the checkpoint has none, the method's dropout and init scale).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use indicatif::MultiProgress;

use ptv2_models::methods::mlm_head::MlmHead;
use ptv2_models::methods::verbalizer::VerbalizerHead;
use ptv2_models::{
    resolve_model, Encoder, EncoderCache, EncoderConfig, MethodInit, ModelDir, Pretrained,
    TextEncoder, TunedModel,
};

use crate::records::settings::{HeadChoice, MissingPooler, RunSettings};
use crate::run::tasks::templates::Verbalizer;
use crate::run::tasks::{load_task, Task};

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
    /// Stop after this many epochs, keeping what resuming needs (a search's rung); the run's
    /// schedule stays its full `epochs`'.
    pub stop_after: Option<usize>,
}

/// The task with `max_train` / `max_eval` applied (the train subset is a fixed random draw, the
/// same for every seed) and its tokenizer-dependent features prepared.
pub fn load_prepared(
    settings: &RunSettings,
    data_dir: &Path,
    text: &TextEncoder,
) -> Result<Box<dyn Task>> {
    let mut task = load_task(&settings.task, data_dir)?;
    task.subset(settings.max_train, settings.max_eval, settings.subset);
    task.prepare(text)?;
    if settings.head == HeadChoice::Verbalizer {
        let labels = task.labels();
        let template = settings.template.as_deref();
        task.use_verbalizer(Verbalizer::resolve(task.name(), template, &labels, text)?)?;
    }
    if task.train_len() == 0 || task.dev_len() == 0 {
        anyhow::bail!("task {}: empty train or dev split", task.name());
    }
    Ok(task)
}

/// The run's pretrained model on `device` and its task, subset and prepared, and the model's
/// dir (resolved once: an embedded model's weights are checksummed on each resolve).
pub fn pretrained_and_task(
    settings: &RunSettings,
    env: &RunEnv,
    device: &Device,
    encoders: &mut EncoderCache,
) -> Result<(Pretrained, Box<dyn Task>, PathBuf)> {
    let spec = resolve_model(&settings.model, &env.cache)?;
    if spec.random_weights {
        eprintln!(
            "model {}: random weights of its config.json's shape (times count, scores do not)",
            settings.model
        );
    }
    let pretrained = Pretrained::load_cached(&spec, settings.max_len, device, encoders)
        .with_context(|| format!("loading model {}", settings.model))?;
    check_token_budget(settings, &pretrained.encoder)?;
    let task = load_prepared(settings, &env.data_dir, &pretrained.text)?;
    Ok((pretrained, task, spec.dir))
}

/// The encoder as `missing_pooler` asks: a random pooler where the checkpoint has none.
pub fn with_missing_pooler(
    encoder: Encoder,
    settings: &RunSettings,
    config: &EncoderConfig,
) -> Encoder {
    match settings.missing_pooler {
        MissingPooler::Random => encoder.with_random_pooler(config.initializer_range),
        MissingPooler::Context => encoder.with_context_pooler(config.initializer_range),
        MissingPooler::Cls => encoder,
    }
}

/// The head the run's settings ask for on a model built with a classifier: a task wrapped in a
/// template (`head = verbalizer`) is read by the checkpoint's masked-LM head at its `[MASK]`.
pub fn with_head(
    model: TunedModel,
    task: &dyn Task,
    config: &EncoderConfig,
    model_dir: &Path,
    device: &Device,
) -> Result<TunedModel> {
    let Some(verbalizer) = task.verbalizer() else {
        return Ok(model);
    };
    let mlm = MlmHead::load(config, &ModelDir::new(model_dir).weights_path()?, device)?;
    Ok(model.with_verbalizer(VerbalizerHead {
        mlm,
        label_ids: verbalizer.label_ids.clone(),
        mask_id: verbalizer.mask_id as i64,
    }))
}

/// Prompt and real tokens together must fit the model's position table.
fn check_token_budget(settings: &RunSettings, encoder: &Encoder) -> Result<()> {
    let (prompt, budget) = (settings.tuning.prompt_len, encoder.token_budget());
    if prompt + settings.max_len > budget {
        anyhow::bail!(
            "\"prompt_len\" {prompt} + \"max_len\" {} = {} tokens, but {} has {budget} positions: lower them so that they add up to at most {budget}",
            settings.max_len,
            prompt + settings.max_len,
            settings.model
        );
    }
    Ok(())
}

/// The method settings every build of the run shares; training adds the seeded real-token inits.
pub fn method_init(settings: &RunSettings, encoder: &EncoderConfig) -> MethodInit {
    MethodInit {
        dropout: settings.dropout,
        init_std: encoder.initializer_range,
        init_tokens: None,
        precision: settings.precision,
    }
}
