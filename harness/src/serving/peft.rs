//! PEFT interop: a PT2, PT, P-tuning or LoRA run as a PEFT adapter dir, and a PEFT adapter as a
//! ptv2 run dir.
//!
//! PEFT's layout (peft 0.11 `PeftModel.save_pretrained`, fixtures in harness/tests/fixtures/peft):
//! `adapter_config.json` (`peft_type` PREFIX_TUNING, PROMPT_TUNING, P_TUNING or LORA, `task_type`,
//! `num_virtual_tokens` or `r`/`lora_alpha`/`target_modules`, …) and `adapter_model.safetensors`
//! holding
//! - `prompt_embeddings`: a prefix `[P, L·2·H]` in the same `[layer][k|v][head][head_dim]` layout as
//!   ptv2's flat prefix, or prompts `[P, H]` (P_TUNING's: its prompt encoder's output, as ptv2's
//!   checkpoint holds it);
//! - or LoRA's `base_model.model.{bert|roberta}.encoder.layer.{i}.attention.self.query.lora_A.weight`
//!   `[r, in]` and `…lora_B.weight` `[out, r]` (ptv2's `lora.{i}.q.a` / `.b` are their transposes);
//!
//! and the head PEFT keeps in `modules_to_save`, as `base_model.classifier.{weight,bias}`
//! (`base_model.model.classifier` under LoRA; `qa_outputs` for QA) in torch's `[out, in]` layout.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ptv2_models::methods::lora::{LoraTargets, Target};
use ptv2_models::methods::p_tuning::LSTM_LAYERS;
use ptv2_models::methods::p_tuning_v2::LayerSelection;
use ptv2_models::methods::PromptPlace;
use ptv2_models::{HeadKind, MethodKind, ModelFamily};
use serde_json::{json, Value};

use crate::records::io::{read_tensors, Floats, RawTensor};
use crate::records::run_dir::{RunDir, CHECKPOINT_FILE, CONFIG_FILE};
use crate::records::settings::{HeadChoice, RunSettings};
use crate::run::setup::RunEnv;
use crate::run::trained::Trained;

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
    crate::records::io::write_safetensors(path, &raw, Some(info))
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

/// The ptv2 checkpoint name of a prompt method's tensor.
fn prompt_tensor(method: MethodKind) -> Result<&'static str> {
    match method {
        MethodKind::Pt2 | MethodKind::Prefix => Ok("prefix.embedding"),
        MethodKind::Pt | MethodKind::Ptuning => Ok("prompt.embedding"),
        MethodKind::Prompt | MethodKind::Ft | MethodKind::Lora => {
            bail!("method {method} has no prompt tensor")
        }
    }
}

/// Where PEFT keeps the head: a prompt method wraps the transformers model directly, LoRA through
/// its `LoraModel`.
fn head_key(method: MethodKind, module: &str, tensor: &str) -> String {
    match method {
        MethodKind::Lora => format!("base_model.model.{module}.{tensor}"),
        MethodKind::Prompt
        | MethodKind::Ft
        | MethodKind::Pt
        | MethodKind::Ptuning
        | MethodKind::Pt2
        | MethodKind::Prefix => {
            format!("base_model.{module}.{tensor}")
        }
    }
}

/// "PREFIX_TUNING is ptv2's pt2, …": what PEFT's types are called here.
fn peft_types() -> String {
    MethodKind::ALL
        .into_iter()
        .filter_map(|m| Some(format!("{} is ptv2's {m}", m.facts().peft_type?)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every (ptv2 name, PEFT name below `encoder.layer.`) of a LoRA run's factors.
fn lora_factor_names(targets: &LoraTargets, layers: usize) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for layer in 0..layers {
        for &target in targets.targets() {
            for (factor, peft) in [("a", "lora_A"), ("b", "lora_B")] {
                names.push((
                    format!("lora.{layer}.{}.{factor}", target.letter()),
                    format!("{layer}.{}.{peft}.weight", target.paths().1),
                ));
            }
        }
    }
    names
}

/// Do a run's prompts enter at the input (PT, P-tuning), where PEFT's sequence head reads the
/// first prompt?
fn input_prompts(method: MethodKind) -> bool {
    method.facts().prompts == PromptPlace::Input
}

/// PEFT's task type and head module of a run PEFT can hold; an error naming what PEFT cannot.
fn exportable(trained: &Trained, run_dir: &Path) -> Result<(&'static str, &'static str)> {
    let settings = &trained.settings;
    let method = settings.tuning.method;
    if method.facts().peft_type.is_none() {
        bail!("method {method} has no PEFT adapter ({})", peft_types());
    }
    if settings.head == HeadChoice::Verbalizer {
        bail!("head verbalizer: PEFT's task types have a classification head, not a masked-LM head over label words");
    }
    if method == MethodKind::Pt2 && settings.tuning.prefix_layers != LayerSelection::All {
        bail!(
            "prefix_layers {}: PEFT's prefix covers every layer",
            settings.tuning.prefix_layers
        );
    }
    let encoder = &trained.model.encoder;
    let (task_type, module) = peft_head(&trained.task.head())?;
    if encoder.family() == ModelFamily::DebertaV2 {
        bail!("DeBERTa-v2: PEFT's prefix tuning needs past_key_values, which transformers' DebertaV2Model does not take, and PEFT names its projections query_proj/value_proj; export covers BERT and RoBERTa runs");
    }
    if encoder.family() == ModelFamily::Roberta && task_type == "SEQ_CLS" {
        bail!("RoBERTa: PEFT's sequence head is RobertaClassificationHead (dense, tanh, out_proj), ptv2's reads the pooler; they are not the same head");
    }
    if input_prompts(method) && task_type == "SEQ_CLS" && settings.tuning.prompt_pool.is_cls() {
        eprintln!(
            "warning: {} reads the real [CLS] (prompt_pool cls); PEFT's sequence head reads the first prompt, so PEFT's logits will differ from ptv2's",
            run_dir.display()
        );
    }
    Ok((task_type, module))
}

/// Write the PT2, PT, P-tuning or LoRA run in `run_dir` as a PEFT adapter dir `out`.
pub fn export(run_dir: &Path, env: &RunEnv, out: &Path) -> Result<()> {
    let trained = Trained::load(run_dir, env)?;
    let settings = &trained.settings;
    let method = settings.tuning.method;
    let encoder = &trained.model.encoder;
    let (task_type, module) = exportable(&trained, run_dir)?;
    let roberta = encoder.family() == ModelFamily::Roberta;
    let ours = read_tensors(&RunDir(run_dir.to_path_buf()).file(CHECKPOINT_FILE))?;
    let get = |name: &str| {
        ours.get(name)
            .cloned()
            .with_context(|| format!("{}: no tensor {name}", run_dir.display()))
    };
    let mut tensors = BTreeMap::from([
        (
            head_key(method, module, "weight"),
            get("head.classifier.weight")?.transposed(),
        ),
        (
            head_key(method, module, "bias"),
            get("head.classifier.bias")?,
        ),
    ]);
    let mut config = json!({
        "auto_mapping": null,
        "base_model_name_or_path": settings.model,
        "inference_mode": true,
        "revision": null,
        "task_type": task_type,
    });
    let extra = if method == MethodKind::Lora {
        let family = if roberta { "roberta" } else { "bert" };
        for (name, peft) in lora_factor_names(&settings.tuning.lora_targets, encoder.num_layers()) {
            let key = format!("base_model.model.{family}.encoder.layer.{peft}");
            tensors.insert(key, get(&name)?.transposed());
        }
        lora_config(settings, module)
    } else {
        let prompt = get(prompt_tensor(method)?)?;
        let extra = prompt_config(settings, prompt.shape[0], encoder)?;
        tensors.insert(PROMPT_EMBEDDINGS.to_string(), prompt);
        extra
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
    crate::records::io::write_atomic(&out.join(ADAPTER_CONFIG), text.as_bytes())
}

/// The config fields of a PREFIX_TUNING, PROMPT_TUNING or P_TUNING adapter of `prompt_len` tokens.
fn prompt_config(
    settings: &RunSettings,
    prompt_len: usize,
    encoder: &ptv2_models::Encoder,
) -> Result<Value> {
    let method = settings.tuning.method;
    let hidden = encoder.hidden_size();
    let width = settings.method()?.encoder_hidden(hidden);
    let peft_type = method.facts().peft_type.expect("a method with a PEFT type");
    let mut config = json!({
        "num_attention_heads": encoder.num_heads(),
        "num_layers": encoder.num_layers(),
        "num_transformer_submodules": 1,
        "num_virtual_tokens": prompt_len,
        "peft_type": peft_type,
        "token_dim": hidden,
    });
    let extra = if method == MethodKind::Pt2 {
        // Saved collapsed: a reparameterized prefix is stored as its MLP's output, as PEFT does.
        json!({"encoder_hidden_size": hidden, "prefix_projection": false})
    } else if method == MethodKind::Prefix {
        // Also saved collapsed; PEFT loads it as a plain prefix in inference mode.
        json!({"encoder_hidden_size": width, "prefix_projection": true})
    } else if method == MethodKind::Ptuning {
        // Also saved as its output; the encoder's shape says how it was trained.
        json!({"encoder_dropout": 0.0, "encoder_hidden_size": width,
               "encoder_num_layers": LSTM_LAYERS,
               "encoder_reparameterization_type": settings.tuning.ptuning_encoder.peft_name()})
    } else {
        json!({"prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": null,
               "tokenizer_kwargs": null, "tokenizer_name_or_path": null})
    };
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    Ok(config)
}

/// The config fields of a LORA adapter, as PEFT 0.11 writes them.
fn lora_config(settings: &RunSettings, head_module: &str) -> Value {
    let modules: Vec<&str> = settings
        .tuning
        .lora_targets
        .targets()
        .iter()
        .map(|&t| t.peft_name())
        .collect();
    // PEFT writes an integral alpha as an integer, and names both heads it knows for SEQ_CLS.
    let alpha = if settings.tuning.lora_alpha.fract() == 0.0 {
        json!(settings.tuning.lora_alpha as i64)
    } else {
        json!(settings.tuning.lora_alpha)
    };
    let modules_to_save = match head_module {
        "classifier" => json!(["classifier", "score"]),
        other => json!([other]),
    };
    json!({
        "alpha_pattern": {}, "bias": "none", "fan_in_fan_out": false, "init_lora_weights": true,
        "layer_replication": null, "layers_pattern": null, "layers_to_transform": null,
        "loftq_config": {}, "lora_alpha": alpha, "lora_dropout": 0.0,
        "megatron_config": null, "megatron_core": "megatron.core",
        "modules_to_save": modules_to_save, "peft_type": "LORA", "r": settings.tuning.lora_rank,
        "rank_pattern": {}, "target_modules": modules, "use_dora": false, "use_rslora": false,
    })
}

/// An adapter dir's config: its ptv2 method (from `peft_type`), its `task_type`, the whole config
/// and its path.
struct AdapterConfig {
    method: MethodKind,
    task_type: String,
    fields: Value,
    path: std::path::PathBuf,
}

impl AdapterConfig {
    fn read(adapter: &Path) -> Result<Self> {
        let path = adapter.join(ADAPTER_CONFIG);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let fields: Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let mut config = Self {
            method: MethodKind::Ft,
            task_type: String::new(),
            fields,
            path,
        };
        let peft_type = config.string("peft_type")?;
        config.method = MethodKind::from_peft_type(peft_type).with_context(|| {
            format!(
                "{}: \"peft_type\" {peft_type}: expected one of ptv2's ({})",
                config.path.display(),
                peft_types()
            )
        })?;
        if config.method == MethodKind::Pt2 && config.fields["prefix_projection"] == json!(true) {
            config.method = MethodKind::Prefix;
        }
        config.task_type = config.string("task_type")?.to_string();
        Ok(config)
    }

    fn string(&self, key: &str) -> Result<&str> {
        self.fields
            .get(key)
            .and_then(Value::as_str)
            .with_context(|| format!("{}: expected a string \"{key}\"", self.path.display()))
    }

    fn number(&self, key: &str) -> Result<f64> {
        self.fields
            .get(key)
            .and_then(Value::as_f64)
            .with_context(|| format!("{}: expected a number \"{key}\"", self.path.display()))
    }

    /// The run settings of the adapter's method (`prompt` its prompt tensor, if it has one).
    fn method_values(&self, prompt: Option<&Floats>) -> Result<Vec<(String, String)>> {
        let mut values = vec![("method".to_string(), self.method.to_string())];
        match self.method {
            MethodKind::Lora => values.extend(self.lora_values()?),
            MethodKind::Ptuning => values.extend(self.ptuning_values()?),
            MethodKind::Prefix => values.push((
                "reparam_hidden".into(),
                self.number("encoder_hidden_size")?.to_string(),
            )),
            _ => {}
        }
        if let Some(prompt) = prompt {
            values.push(("prompt_len".to_string(), prompt.shape[0].to_string()));
        }
        if input_prompts(self.method) && self.task_type == "SEQ_CLS" {
            // PEFT's sequence head reads the first prompt (position 0 of prompts + tokens).
            values.push(("prompt_pool".to_string(), "first".to_string()));
        }
        Ok(values)
    }

    /// P-tuning's settings (`ptuning_encoder`, `reparam_hidden`); an LSTM of another depth than
    /// ptv2's is refused.
    fn ptuning_values(&self) -> Result<Vec<(String, String)>> {
        let kind = self.string("encoder_reparameterization_type")?;
        let layers = self.number("encoder_num_layers")?;
        if kind == "LSTM" && layers != LSTM_LAYERS as f64 {
            bail!(
                "{}: \"encoder_num_layers\" is {layers}; ptv2's LSTM prompt encoder has {LSTM_LAYERS}",
                self.path.display()
            );
        }
        Ok(vec![
            ("ptuning_encoder".into(), kind.to_ascii_lowercase()),
            (
                "reparam_hidden".into(),
                self.number("encoder_hidden_size")?.to_string(),
            ),
        ])
    }

    /// LoRA's settings (`lora_rank`, `lora_alpha`, `lora_targets`); what ptv2's LoRA does not do
    /// (rsLoRA's or DoRA's scaling, trained biases, per-layer ranks, some layers only) is refused.
    fn lora_values(&self) -> Result<Vec<(String, String)>> {
        let at = self.path.display();
        let plain = [
            ("bias", json!("none")),
            ("use_rslora", json!(false)),
            ("use_dora", json!(false)),
            ("fan_in_fan_out", json!(false)),
            ("layers_to_transform", Value::Null),
            ("rank_pattern", json!({})),
            ("alpha_pattern", json!({})),
        ];
        for (key, expected) in plain {
            let found = self.fields.get(key).unwrap_or(&Value::Null);
            let absent_is_fine = found.is_null() && expected != Value::Null;
            if found != &expected && !absent_is_fine {
                bail!("{at}: \"{key}\" is {found}; ptv2's LoRA needs {expected}");
            }
        }
        let modules: Vec<String> = match self.fields.get("target_modules") {
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|m| m.as_str().map(String::from))
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => bail!("{at}: expected \"target_modules\", a list of module names"),
        };
        let mut letters = Vec::new();
        for module in &modules {
            let Some(target) = Target::from_peft_name(module) else {
                bail!("{at}: target module \"{module}\": ptv2's LoRA adapts query, key, value and attention.output.dense");
            };
            letters.push(target.letter());
        }
        Ok(vec![
            ("lora_rank".into(), self.number("r")?.to_string()),
            ("lora_alpha".into(), self.number("lora_alpha")?.to_string()),
            ("lora_targets".into(), letters.join(",")),
        ])
    }
}

/// ptv2's checkpoint tensors of a LoRA adapter's factors, PEFT's `[out, in]` transposed.
fn lora_tensors(
    weights: &BTreeMap<String, Floats>,
    targets: &LoraTargets,
    weights_path: &Path,
) -> Result<BTreeMap<String, Floats>> {
    // PEFT's names below the model's own prefix (`base_model.model.bert.`, `…roberta.`).
    let by_layer_path: BTreeMap<&str, &Floats> = weights
        .iter()
        .filter_map(|(name, tensor)| Some((name.split_once(".encoder.layer.")?.1, tensor)))
        .collect();
    let layers = by_layer_path
        .keys()
        .filter_map(|name| name.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |last| last + 1);
    lora_factor_names(targets, layers)
        .into_iter()
        .map(|(ours, peft)| {
            let tensor = by_layer_path.get(peft.as_str()).with_context(|| {
                format!(
                    "{}: no tensor …encoder.layer.{peft}",
                    weights_path.display()
                )
            })?;
            Ok((ours, tensor.transposed()))
        })
        .collect()
}

/// Make a ptv2 run dir `out` of the PEFT adapter dir `adapter`; `base` holds the run settings
/// that name the model and the task (and any other, e.g. max_len). Checked by loading it as `ptv2 predict` would:
/// what does not fit (another model's sizes, another task's head) is removed again.
pub fn import(adapter: &Path, base: &[(String, String)], env: &RunEnv, out: &Path) -> Result<()> {
    let config = AdapterConfig::read(adapter)?;
    let method = config.method;
    let weights_path = adapter.join(ADAPTER_WEIGHTS);
    let weights = read_tensors(&weights_path)?;
    let get = |name: &str| {
        weights
            .get(name)
            .cloned()
            .with_context(|| format!("{}: no tensor {name}", weights_path.display()))
    };
    let prompt = match method {
        MethodKind::Lora => None,
        _ => Some(get(PROMPT_EMBEDDINGS)?),
    };
    let mut values = base.to_vec();
    values.extend(config.method_values(prompt.as_ref())?);
    let settings = RunSettings::from_values(&values, "import-peft")?.resolved()?;
    // Checked before anything is written: the shape check of loading would name the tensors only.
    let task = crate::run::tasks::load_task(&settings.task, &env.data_dir)?;
    let (needed, module) = peft_head(&task.head())?;
    if needed != config.task_type {
        bail!(
            "{}: \"task_type\" is {}, but task {} needs {needed}",
            config.path.display(),
            config.task_type,
            task.name()
        );
    }
    let mut ours = match prompt {
        Some(prompt) => BTreeMap::from([(prompt_tensor(method)?.to_string(), prompt)]),
        None => lora_tensors(&weights, &settings.tuning.lora_targets, &weights_path)?,
    };
    ours.insert(
        "head.classifier.weight".to_string(),
        get(&head_key(method, module, "weight"))?.transposed(),
    );
    ours.insert(
        "head.classifier.bias".to_string(),
        get(&head_key(method, module, "bias"))?,
    );
    write_checked_run(out, &ours, &settings, env).with_context(|| {
        format!(
            "{} does not fit {} / {}",
            adapter.display(),
            settings.model,
            settings.task
        )
    })
}

/// Write a run dir of `tensors` and `settings`, then load it as `ptv2 predict` would; what does
/// not load is removed again.
fn write_checked_run(
    out: &Path,
    tensors: &BTreeMap<String, Floats>,
    settings: &RunSettings,
    env: &RunEnv,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_tensors(&out.join(CHECKPOINT_FILE), tensors, ("producer", "ptv2"))?;
    crate::records::io::write_json(&out.join(CONFIG_FILE), settings)?;
    let checked = Trained::load(out, env).map(|_| ());
    if checked.is_err() {
        let _ = std::fs::remove_file(out.join(CHECKPOINT_FILE));
        let _ = std::fs::remove_file(out.join(CONFIG_FILE));
    }
    checked
}
