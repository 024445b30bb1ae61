//! PEFT interop: a PT2 or PT run as a PEFT adapter dir, and a PEFT adapter as a ptv2 run dir.
//!
//! PEFT's layout (peft 0.11 `PeftModel.save_pretrained`, fixtures in harness/tests/fixtures/peft):
//! `adapter_config.json` (`peft_type` PREFIX_TUNING or PROMPT_TUNING, `task_type`,
//! `num_virtual_tokens`, …) and `adapter_model.safetensors` holding `prompt_embeddings` — a
//! prefix `[P, L·2·H]` in the same `[layer][k|v][head][head_dim]` layout as ptv2's flat prefix, or
//! prompts `[P, H]` — and the head PEFT keeps in `modules_to_save`, as
//! `base_model.classifier.{weight,bias}` (`qa_outputs` for QA) in torch's `[out, in]` layout.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ptv2_models::HeadKind;
use serde_json::{json, Value};

use crate::io::{read_tensors, Floats, RawTensor};
use crate::records::{RunDir, CHECKPOINT_FILE, CONFIG_FILE};
use crate::settings::RunSettings;
use crate::train::{RunEnv, Trained};

pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
const PROMPT_EMBEDDINGS: &str = "prompt_embeddings";

fn write_tensors(
    path: &Path,
    tensors: &BTreeMap<String, Floats>,
    metadata: (&str, &str),
) -> Result<()> {
    let raw = tensors
        .iter()
        .map(|(name, t)| (name.clone(), RawTensor::f32(t.shape.clone(), &t.values)))
        .collect();
    let info = HashMap::from([(metadata.0.to_string(), metadata.1.to_string())]);
    crate::io::write_safetensors(path, &raw, Some(info))
}

/// PEFT's task type and the name of its head module for a ptv2 head.
fn peft_head(kind: &HeadKind) -> Result<(&'static str, &'static str)> {
    Ok(match kind {
        HeadKind::SequenceClassification { .. } | HeadKind::Regression => ("SEQ_CLS", "classifier"),
        HeadKind::TokenClassification { .. } => ("TOKEN_CLS", "classifier"),
        HeadKind::Span => ("QUESTION_ANS", "qa_outputs"),
        HeadKind::MultipleChoice { .. } => {
            bail!("PEFT's prompt methods have no multiple-choice task type to export to")
        }
    })
}

/// The ptv2 checkpoint name of the adapter tensor, and PEFT's type, for a method.
fn adapter_name(method: &str) -> Result<(&'static str, &'static str)> {
    match method {
        "pt2" => Ok(("prefix.embedding", "PREFIX_TUNING")),
        "pt" => Ok(("prompt.embedding", "PROMPT_TUNING")),
        other => bail!(
            "method \"{other}\" has no PEFT adapter: PREFIX_TUNING is ptv2's pt2, PROMPT_TUNING its pt"
        ),
    }
}

/// Write the PT2 or PT run in `run_dir` as a PEFT adapter dir `out`.
pub fn export(run_dir: &Path, env: &RunEnv, out: &Path) -> Result<()> {
    let trained = Trained::load(run_dir, env)?;
    let settings = &trained.settings;
    let (tensor, peft_type) = adapter_name(&settings.method)?;
    if settings.method == "pt2" && settings.prefix_layers.to_string() != "all" {
        bail!(
            "prefix_layers {}: PEFT's prefix covers every layer",
            settings.prefix_layers
        );
    }
    let encoder = &trained.model.encoder;
    let head = trained.task.head();
    let (task_type, module) = peft_head(&head)?;
    if encoder.roberta_padding_idx >= 0 && task_type == "SEQ_CLS" {
        bail!("RoBERTa: PEFT's sequence head is RobertaClassificationHead (dense, tanh, out_proj), ptv2's reads the pooler; they are not the same head");
    }
    if settings.method == "pt" && task_type == "SEQ_CLS" && settings.prompt_pool.is_cls() {
        eprintln!(
            "warning: {} reads the real [CLS] (prompt_pool cls); PEFT's sequence head reads the first prompt, so PEFT's logits will differ from ptv2's",
            run_dir.display()
        );
    }
    let ours = read_tensors(&RunDir(run_dir.to_path_buf()).file(CHECKPOINT_FILE))?;
    let get = |name: &str| {
        ours.get(name)
            .cloned()
            .with_context(|| format!("{}: no tensor {name}", run_dir.display()))
    };
    let prompt = get(tensor)?;
    let tensors = BTreeMap::from([
        (PROMPT_EMBEDDINGS.to_string(), prompt.clone()),
        (
            format!("base_model.{module}.weight"),
            get("head.classifier.weight")?.transposed(),
        ),
        (
            format!("base_model.{module}.bias"),
            get("head.classifier.bias")?,
        ),
    ]);
    let hidden = encoder.hidden_size();
    let mut config = json!({
        "auto_mapping": null,
        "base_model_name_or_path": settings.model,
        "inference_mode": true,
        "num_attention_heads": encoder.num_heads(),
        "num_layers": encoder.num_layers(),
        "num_transformer_submodules": 1,
        "num_virtual_tokens": prompt.shape[0],
        "peft_type": peft_type,
        "revision": null,
        "task_type": task_type,
        "token_dim": hidden,
    });
    let extra = if peft_type == "PREFIX_TUNING" {
        // Saved collapsed: a reparameterized prefix is stored as its MLP's output, as PEFT does.
        json!({"encoder_hidden_size": hidden, "prefix_projection": false})
    } else {
        json!({"prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": null,
               "tokenizer_kwargs": null, "tokenizer_name_or_path": null})
    };
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    // Keys sorted, as PEFT writes them.
    let config: BTreeMap<String, Value> = config.as_object().unwrap().clone().into_iter().collect();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_tensors(&out.join(ADAPTER_WEIGHTS), &tensors, ("format", "pt"))?;
    let text = serde_json::to_string_pretty(&config)? + "\n";
    crate::io::write_atomic(&out.join(ADAPTER_CONFIG), text.as_bytes())
}

/// An adapter dir's ptv2 method (from `peft_type`), its `task_type`, and its config's path.
fn read_adapter_config(adapter: &Path) -> Result<(&'static str, String, std::path::PathBuf)> {
    let config_path = adapter.join(ADAPTER_CONFIG);
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let config: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", config_path.display()))?;
    let field = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .with_context(|| format!("{}: expected a string \"{key}\"", config_path.display()))
    };
    let method = match field("peft_type")? {
        "PREFIX_TUNING" => "pt2",
        "PROMPT_TUNING" => "pt",
        other => bail!(
            "{}: \"peft_type\" {other}: expected PREFIX_TUNING or PROMPT_TUNING",
            config_path.display()
        ),
    };
    let task_type = field("task_type")?;
    Ok((method, task_type.to_string(), config_path))
}

/// Make a ptv2 run dir `out` of the PEFT adapter dir `adapter`; `base` holds the run settings
/// that name the model and the task (and any other, e.g. max_len). Checked by loading it as `ptv2 predict` would:
/// what does not fit (another model's sizes, another task's head) is removed again.
pub fn import(adapter: &Path, base: &[(String, String)], env: &RunEnv, out: &Path) -> Result<()> {
    let (method, task_type, config_path) = read_adapter_config(adapter)?;
    let weights_path = adapter.join(ADAPTER_WEIGHTS);
    let weights = read_tensors(&weights_path)?;
    let get = |name: &str| {
        weights
            .get(name)
            .cloned()
            .with_context(|| format!("{}: no tensor {name}", weights_path.display()))
    };
    let prompt = get(PROMPT_EMBEDDINGS)?;
    let mut values = base.to_vec();
    values.push(("method".to_string(), method.to_string()));
    values.push(("prompt_len".to_string(), prompt.shape[0].to_string()));
    if method == "pt" && task_type == "SEQ_CLS" {
        // PEFT's sequence head reads the first prompt (position 0 of prompts + tokens).
        values.push(("prompt_pool".to_string(), "first".to_string()));
    }
    let settings = RunSettings::from_values(&values, "import-peft")?.resolved()?;
    // Checked before anything is written: the shape check of loading would name the tensors only.
    let task = crate::tasks::load_task(&settings.task, &env.data_dir)?;
    let (needed, module) = peft_head(&task.head())?;
    if needed != task_type {
        bail!(
            "{}: \"task_type\" is {task_type}, but task {} needs {needed}",
            config_path.display(),
            task.name()
        );
    }
    let (tensor, _) = adapter_name(method)?;
    let ours = BTreeMap::from([
        (tensor.to_string(), prompt),
        (
            "head.classifier.weight".to_string(),
            get(&format!("base_model.{module}.weight"))?.transposed(),
        ),
        (
            "head.classifier.bias".to_string(),
            get(&format!("base_model.{module}.bias"))?,
        ),
    ]);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_tensors(&out.join(CHECKPOINT_FILE), &ours, ("producer", "ptv2"))?;
    crate::io::write_json(&out.join(CONFIG_FILE), &settings)?;

    let checked = Trained::load(out, env).map(|_| ());
    if checked.is_err() {
        let _ = std::fs::remove_file(out.join(CHECKPOINT_FILE));
        let _ = std::fs::remove_file(out.join(CONFIG_FILE));
    }
    checked.with_context(|| {
        format!(
            "{} does not fit {} / {}",
            adapter.display(),
            settings.model,
            settings.task
        )
    })
}
