//! A run's settings: the one list of them. Everything else is derived from this type:
//!
//! - `ptv2 train`'s flags (clap derives them from the fields, their docs and defaults);
//! - a sweep file's keys and their defaults (`from_values` parses through the same flags);
//! - `config.json` and the run id (a hash of the settings as JSON);
//! - the results tables' setting columns (`ResultRow` flattens it);
//! - the summary's and `ptv2 check`'s configuration key (every setting but the seed);
//! - the schema table in experiments/README.md (`schema_markdown`, checked by a test).
//!
//! A new setting is a field here (doc comment, flag, default), plus the code that uses it.

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use ptv2_models::methods::PromptPlace;
use ptv2_models::{Method, MethodKind, MethodOptions, Precision, DEFAULT_MODEL};

use crate::records::schedule::Schedule;

/// Everything that defines a run's result.
#[derive(Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// HF model dir or embedded name (`minilm-l6`; `minilm-l6@2` = its first 2 layers; `random:DIR` = DIR's shape with random weights)
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// task name (`ptv2 tasks` lists them), `NAME:TRAIN,DEV` or `parquet:NAME:TRAIN,DEV`
    #[arg(long)]
    pub task: String,
    /// the method and its options, flattened: flags, sweep keys and config.json keep one flat
    /// list (and run ids stay what they were before the group existed)
    #[command(flatten)]
    #[serde(flatten)]
    pub tuning: MethodOptions,
    /// where the checkpoint has no pooler (roberta-large, DeBERTa): `cls` (sequence heads read the [CLS]/<s> state), `random` (a randomly initialised tanh pooler, frozen with the backbone and saved with the run: THUDM's RobertaModel) or `context` (DeBERTa's ContextPooler as THUDM's DeBERTa classes have it: dense + GELU, drawn at random, trained with the head, saved with the run)
    #[arg(long, value_enum, default_value_t = MissingPooler::Cls)]
    #[serde(default, skip_serializing_if = "is_default")]
    pub missing_pooler: MissingPooler,
    /// what reads the encoder's output: `classifier` (a new linear head on the [CLS], the paper's) or `verbalizer` (the checkpoint's masked-LM head at a template's [MASK], a label word per class, experiments/templates.toml; needs a …ForMaskedLM model). `prompt` always reads the verbalizer
    #[arg(long, value_enum, default_value_t = HeadChoice::Classifier)]
    #[serde(default, skip_serializing_if = "is_default")]
    pub head: HeadChoice,
    /// the verbalizer's template, by name in experiments/templates.toml (default: the task's only one)
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// peak learning rate (AdamW); every method but `prompt` (which trains nothing) needs one
    #[arg(long, default_value_t = f64::NAN, hide_default_value = true)]
    pub lr: f64,
    /// training epochs (dev is scored after each; the best epoch counts)
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// examples per training step
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// gradient accumulation: each batch goes through forward and backward in this many slices whose gradients are summed before the step (the same batches, steps and learning rates, a slice's activations in memory at a time). Token and span losses weight the slices by examples, as HF's Trainer does
    #[arg(long, default_value_t = 1)]
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub grad_accum: usize,
    /// seed of the init, dropout and batch order (runs that differ only in it are seeds of one configuration)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// train on a fixed subset of this many examples (the same for every seed; see `subset`)
    #[arg(long)]
    pub max_train: Option<usize>,
    /// which `max_train` examples: `random` (a fixed random draw) or `first` (the file's first)
    #[arg(long, value_enum, default_value_t = Subset::Random)]
    #[serde(default, skip_serializing_if = "is_default")]
    pub subset: Subset,
    /// score the first this-many dev examples (and test examples, where the task has a labelled test split)
    #[arg(long)]
    pub max_eval: Option<usize>,
    /// tokens per example, longest-first truncation (QA: the window length)
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// dropout on the prefix and before the head (the backbone keeps its config's rates unless `backbone_dropout` is set)
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f64,
    /// the frozen or trained backbone's hidden dropout (embeddings, attention and FFN outputs; attention probabilities keep the config's); default: the model config's (0.1 for BERT/RoBERTa). The reference scripts set it with the run's dropout (0.2 for SQuAD)
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_dropout: Option<f64>,
    /// learning-rate schedule: `linear`, `linear:WARMUP_RATIO`, `exp:GAMMA` (per epoch)
    #[arg(long, default_value = "linear")]
    pub schedule: Schedule,
    /// how an epoch is cut into batches: `random` (shuffled, as the reference scripts' sampler) or `grouped` (shuffled, examples of similar length together, as HF's group_by_length: less padding, but 3 F1 points lower on CoNLL-2003 in conll-gap)
    #[arg(long, value_enum, default_value_t = Batching::Random)]
    #[serde(default, skip_serializing_if = "is_default")]
    pub batching: Batching,
    /// the frozen backbone's projections (q, k, v, attention output, feed-forward): `f32`, `bf16` or `f16` weights and products (the mixed-precision split: LayerNorm, softmax, embeddings and everything trained stay f32). Not for `ft`, which trains every weight
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    #[serde(default, skip_serializing_if = "is_default")]
    pub precision: Precision,
    /// who trains the run: `ptv2`; `pytorch` (the same data, batches, init and schedule replayed in PyTorch + transformers + PEFT by tools/reference/replay.py); or `peft-native` (PEFT's own loop: its inits, its shuffled batches, no prefix dropout; ptv2 tokenizes and scores). Both need `PTV2_PYTHON`
    #[arg(long, value_enum, default_value_t = Framework::Ptv2)]
    #[serde(default, skip_serializing_if = "is_default")]
    pub framework: Framework,
}

/// What a sequence head reads where the checkpoint has no pooler.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingPooler {
    #[default]
    Cls,
    Random,
    Context,
}

/// What reads the encoder's output (`TaskHead`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadChoice {
    #[default]
    Classifier,
    Verbalizer,
}

/// Which `max_train` training examples a run keeps.
#[derive(
    clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Subset {
    #[default]
    Random,
    First,
}

/// How an epoch's training examples are cut into batches. The flag's default is `Random` (what
/// the evidence of issue 18 chose); `Default` is `Grouped`, what a config.json without the key
/// means (runs before the change), so that those runs keep their ids and their meaning.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batching {
    #[default]
    Grouped,
    Random,
}

/// The stack that trains a run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// ptv2 itself.
    #[default]
    Ptv2,
    /// The replay: PyTorch + PEFT train ptv2's run, from its start, on its batches.
    Pytorch,
    /// PEFT's own training loop, as its users write it: PEFT's model and inits, a shuffling
    /// `DataLoader`, no ptv2 batches (ptv2 tokenizes and scores).
    #[serde(rename = "peft-native")]
    PeftNative,
}

impl Framework {
    pub const ALL: [Self; 3] = [Self::Ptv2, Self::Pytorch, Self::PeftNative];

    /// Its name in tables and chart legends.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ptv2 => "ptv2",
            Self::Pytorch => "PyTorch + PEFT replay",
            Self::PeftNative => "PEFT's own loop",
        }
    }
}

/// The settings added after runs existed, each with what a config.json without it means: the
/// value every run had before the setting existed. config.json leaves a setting out while it
/// holds that value (its field's `skip_serializing_if`), so that earlier runs keep their ids;
/// `fill_omitted`, the listings (`away_from_default`) and the id tests read this table.
#[allow(clippy::type_complexity)]
const LATER_SETTINGS: [(&str, fn() -> serde_json::Value); 15] = [
    ("prompt_pool", || "cls".into()),
    ("subset", || "random".into()),
    // Not the flag's default (random): runs before the change were grouped (see Batching).
    ("batching", || "grouped".into()),
    ("framework", || "ptv2".into()),
    ("lora_rank", || ptv2_models::methods::LORA_RANK.into()),
    ("lora_alpha", || ptv2_models::methods::LORA_ALPHA.into()),
    ("lora_targets", || "q,v".into()),
    ("backbone_dropout", || serde_json::Value::Null),
    ("missing_pooler", || "cls".into()),
    ("grad_accum", || 1.into()),
    ("prefix_dropout", || serde_json::Value::Null),
    ("ptuning_encoder", || "lstm".into()),
    ("head", || "classifier".into()),
    ("template", || serde_json::Value::Null),
    ("precision", || "f32".into()),
];

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The settings alone as a command, for parsing sweep values and listing the keys.
#[derive(Parser)]
#[command(name = "settings", no_binary_name = true)]
struct SettingsCommand {
    #[command(flatten)]
    settings: RunSettings,
}

/// How a setting's key is written as a flag.
fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

impl RunSettings {
    /// Every setting's key, in field order.
    pub fn keys() -> Vec<String> {
        SettingsCommand::command()
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .filter(|id| id != "help")
            .collect()
    }

    /// Settings from `key = value` text pairs (a sweep's resolved keys, an old config.json),
    /// parsed and defaulted exactly as `ptv2 train`'s flags are. Errors name `at` and the key.
    pub fn from_values<K: AsRef<str>, V: AsRef<str>>(values: &[(K, V)], at: &str) -> Result<Self> {
        let command = SettingsCommand::command();
        for key in values.iter().map(|(k, _)| k.as_ref()) {
            if !command.get_arguments().any(|a| a.get_id() == key) {
                bail!(
                    "{at}: unknown key \"{key}\" (expected one of: {})",
                    Self::keys().join(", ")
                );
            }
        }
        let given = |key: &str| values.iter().find(|(k, _)| k.as_ref() == key);
        for arg in command.get_arguments().filter(|a| a.is_required_set()) {
            if given(arg.get_id().as_str()).is_none() {
                bail!(
                    "{at}: no value for \"{}\" (set it in [fixed] or [grid])",
                    arg.get_id()
                );
            }
        }
        let method = given("method").and_then(|(_, m)| MethodKind::parse(m.as_ref()).ok());
        if given("lr").is_none() && !method.is_some_and(MethodKind::trains_nothing) {
            bail!("{at}: no value for \"lr\" (set it in [fixed] or [grid]; only prompt, which trains nothing, goes without)");
        }
        let argv = values
            .iter()
            .map(|(k, v)| format!("{}={}", flag(k.as_ref()), v.as_ref()));
        let matches = command
            .try_get_matches_from(argv)
            .map_err(|e| clap_error(&e, at))?;
        let parsed = SettingsCommand::from_arg_matches(&matches)
            .map_err(|e| anyhow::anyhow!("{at}: {}", e.render()))?;
        parsed.settings.resolved().with_context(|| at.to_string())
    }

    /// Checked, with the options its method does not have at their neutral values, so that
    /// settings that make the same run are equal (and get one id).
    pub fn resolved(mut self) -> Result<Self> {
        self.check_ranges()?;
        self.tuning = self.method()?.options();
        if self.tuning.method.trains_nothing() {
            // Zero-shot: one evaluation of the pretrained model through its masked-LM head;
            // the training settings and the seed change nothing, so they collapse into one run.
            (self.lr, self.epochs, self.seed) = (0.0, 1, 1);
            self.head = HeadChoice::Verbalizer;
        }
        if self.head == HeadChoice::Classifier {
            self.template = None;
        }
        // A prefix dropout equal to the run's dropout is what leaving it out means: one run.
        if self.tuning.prefix_dropout == Some(self.dropout) {
            self.tuning.prefix_dropout = None;
        }
        Ok(self)
    }

    /// Numbers in their ranges; each error names the setting (flag `--x-y`, sweep key `x_y`).
    fn check_ranges(&self) -> Result<()> {
        let at_least_one = [
            ("epochs", Some(self.epochs)),
            ("batch_size", Some(self.batch_size)),
            ("grad_accum", Some(self.grad_accum)),
            ("max_train", self.max_train),
            ("max_eval", self.max_eval),
            ("reparam_hidden", self.tuning.reparam_hidden),
            ("lora_rank", Some(self.tuning.lora_rank)),
        ];
        for (key, value) in at_least_one {
            if value == Some(0) {
                bail!("\"{key}\" must be at least 1, found 0");
            }
        }
        let method = self.tuning.method;
        if !(method.trains_nothing() || self.lr > 0.0 && self.lr.is_finite()) {
            // NaN is the flag's default: not given.
            if self.lr.is_nan() {
                bail!("no value for \"lr\" (--lr): {method} trains, it needs a learning rate > 0");
            }
            bail!("\"lr\" must be a number > 0, found {}", self.lr);
        }
        for (key, rate) in [
            ("dropout", Some(self.dropout)),
            ("backbone_dropout", self.backbone_dropout),
            ("prefix_dropout", self.tuning.prefix_dropout),
        ] {
            if let Some(rate) = rate.filter(|r| !(0.0..1.0).contains(r)) {
                bail!("\"{key}\" must be in [0, 1), found {rate}");
            }
        }
        if self.max_len < 8 {
            bail!(
                "\"max_len\" must be at least 8 tokens, found {}",
                self.max_len
            );
        }
        let o = &self.tuning;
        if !(o.lora_alpha > 0.0 && o.lora_alpha.is_finite()) {
            bail!(
                "\"lora_alpha\" must be a number > 0, found {}",
                o.lora_alpha
            );
        }
        if self.precision != Precision::F32 && !o.method.freezes_backbone() {
            bail!(
                "\"precision\" {} halves a frozen backbone's weights; {} trains every weight, so it runs in f32 (set precision = \"f32\" for it)",
                self.precision,
                o.method
            );
        }
        if o.method.has_prompts() && o.prompt_len == 0 {
            bail!(
                "\"prompt_len\" must be at least 1 for {}, found 0",
                o.method
            );
        }
        Ok(())
    }

    /// The tuning method these settings describe.
    pub fn method(&self) -> Result<Method> {
        Method::from_options(&self.tuning).map_err(anyhow::Error::msg)
    }

    /// The prompt (pt) or prefix (pt2) init; empty for methods without prompts.
    pub fn init(&self) -> String {
        match self.tuning.method.facts().prompts {
            PromptPlace::Input => self.tuning.prompt_init.to_string(),
            PromptPlace::EveryLayer => self.tuning.prefix_init.to_string(),
            PromptPlace::None => String::new(),
        }
    }

    /// Put the settings that config.json leaves out (`LATER_SETTINGS`) into the serialized
    /// `fields` of a run's settings, for tables.
    pub fn fill_omitted(fields: &mut serde_json::Map<String, serde_json::Value>) {
        for (key, absent) in LATER_SETTINGS {
            fields.entry(key).or_insert_with(absent);
        }
    }

    /// The settings of `LATER_SETTINGS` this run sets away from their flag default, as
    /// (key, value): what tells a PyTorch replay or grouped batches apart in a listing.
    pub fn away_from_default(&self) -> Vec<(&'static str, String)> {
        let mut fields = self.configuration();
        Self::fill_omitted(&mut fields);
        LATER_SETTINGS
            .into_iter()
            .filter_map(|(key, _)| {
                let value = Self::value_text(fields.get(key)?)?;
                (!Self::is_flag_default(key, &value)).then_some((key, value))
            })
            .collect()
    }

    /// A setting's value as its flag text (`grouped`, `8`); None for an unset optional one.
    pub fn value_text(value: &serde_json::Value) -> Option<String> {
        match value {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Is `text` the flag's default for `key` (numbers compared as numbers: `8.0` is `8`)?
    pub fn is_flag_default(key: &str, text: &str) -> bool {
        let default = Self::default_of(key).unwrap_or_default();
        text == default || text.parse::<f64>().is_ok_and(|v| default.parse() == Ok(v))
    }

    /// A setting's default as its flag text (`random` for `subset`); None for required ones.
    pub fn default_of(key: &str) -> Option<String> {
        let command = SettingsCommand::command();
        let arg = command.get_arguments().find(|a| a.get_id() == key)?;
        let default = arg.get_default_values().first()?;
        Some(default.to_string_lossy().to_string())
    }

    /// The run's id: the first 12 hex digits of the sha256 of its settings as JSON.
    pub fn id(&self) -> String {
        let json = serde_json::to_string(self).expect("settings serialize");
        format!("{:x}", Sha256::digest(json.as_bytes()))[..12].to_string()
    }

    /// Every setting but the seed, as table columns: a configuration's identity.
    pub fn configuration(&self) -> serde_json::Map<String, serde_json::Value> {
        let serde_json::Value::Object(mut fields) =
            serde_json::to_value(self).expect("settings serialize")
        else {
            unreachable!("settings serialize to an object")
        };
        fields.shift_remove("seed");
        fields
    }

    /// `configuration` as `key=value` pairs: runs that share it are seeds of one configuration;
    /// the summary and `ptv2 check` group by it.
    pub fn key(&self) -> String {
        self.configuration()
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| match value {
                serde_json::Value::String(s) => format!("{key}={s}"),
                other => format!("{key}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A `config.json`: this version's, or an older one (method options nested as the method
    /// recorded them, `layers`, the schedule as an object), read through `from_values`.
    pub fn from_config_json(text: &str, at: &str) -> Result<Self> {
        if let Ok(settings) = serde_json::from_str::<Self>(text) {
            return Ok(settings);
        }
        let value: serde_json::Value =
            serde_json::from_str(text).with_context(|| format!("{at}: not JSON"))?;
        let Some(fields) = value.as_object() else {
            bail!("{at}: not a run config (expected a JSON object)");
        };
        let values: Vec<(String, String)> = fields
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(key, value)| {
                let key = if key == "layers" {
                    "prefix_layers"
                } else {
                    key
                };
                (key.to_string(), legacy_value(key, value))
            })
            .collect();
        Self::from_values(&values, at)
    }
}

/// clap's error about a value as one line naming the key, e.g. `s.toml: "batch_size" = "eight"
/// is not valid: invalid value 'eight' for '--batch-size <BATCH_SIZE>': invalid digit …`.
fn clap_error(err: &clap::Error, at: &str) -> anyhow::Error {
    use clap::error::ContextKind;
    let rendered = err.render().to_string();
    let reason = rendered.lines().next().unwrap_or_default();
    let reason = reason.trim_start_matches("error: ");
    let key = err.get(ContextKind::InvalidArg).map(|arg| {
        let flag = arg.to_string();
        let name = flag
            .trim_start_matches("--")
            .split([' ', '='])
            .next()
            .unwrap_or_default()
            .to_string();
        name.replace('-', "_")
    });
    match (key, err.get(ContextKind::InvalidValue)) {
        (Some(key), Some(value)) => {
            anyhow::anyhow!("{at}: \"{key}\" = \"{value}\" is not valid: {reason}")
        }
        _ => anyhow::anyhow!("{at}: {reason}"),
    }
}

/// A value of an older config.json as its flag text.
fn legacy_value(key: &str, value: &serde_json::Value) -> String {
    match (key, value) {
        ("schedule", serde_json::Value::Object(s)) => match (s.get("kind"), s.get("gamma")) {
            (Some(k), Some(g)) if k == "exponential" => format!("exp:{g}"),
            _ => format!("linear:{}", s.get("warmup_ratio").unwrap_or(&0.into())),
        },
        (_, serde_json::Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// The schema table of experiments/README.md: every key, what it means, its default.
pub fn schema_markdown() -> String {
    let command = SettingsCommand::command();
    let mut out = String::from("| key | meaning | default |\n|---|---|---|\n");
    for arg in command.get_arguments().filter(|a| a.get_id() != "help") {
        // A hidden default stands for "not given" (`lr`'s NaN): the key is required.
        let default = if arg.is_required_set() || arg.is_hide_default_value_set() {
            "required".to_string()
        } else {
            match arg.get_default_values() {
                [] => "none".to_string(),
                values => format!("`{}`", values[0].to_string_lossy()),
            }
        };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        out.push_str(&format!("| `{}` | {help} | {default} |\n", arg.get_id()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_come_from_the_flags() {
        let s = RunSettings::from_values(
            &values(&[("task", "sst2"), ("method", "pt2"), ("lr", "0.01")]),
            "t",
        )
        .unwrap();
        assert_eq!((s.tuning.prompt_len, s.epochs, s.max_len), (16, 3, 128));
        assert_eq!(s.model, DEFAULT_MODEL);
        assert_eq!(s.schedule.to_string(), "linear");
    }

    #[test]
    fn ft_ignores_prompt_options() {
        let a = values(&[("task", "sst2"), ("method", "ft"), ("lr", "1e-5")]);
        let mut b = a.clone();
        b.push(("prompt_len".into(), "4".into()));
        let (a, b) = (
            RunSettings::from_values(&a, "t").unwrap(),
            RunSettings::from_values(&b, "t").unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!((a.id(), a.tuning.prompt_len), (b.id(), 0));
    }

    #[test]
    fn errors_name_the_key_and_what_was_expected() {
        let base = [("task", "sst2"), ("method", "pt2")];
        let err = RunSettings::from_values(&values(&base), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no value for \"lr\""), "{err}");
        let mut bad = values(&base);
        bad.extend(values(&[("lr", "0.1"), ("batch_size", "eight")]));
        let err = RunSettings::from_values(&bad, "s.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.toml: \"batch_size\" = \"eight\""),
            "{err}"
        );
        let err = RunSettings::from_values(&values(&[("modle", "x")]), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key \"modle\""), "{err}");
    }

    #[test]
    fn half_precision_is_for_frozen_backbones_and_f32_stays_out_of_config_json() {
        let with = |method: &str, precision: &str| {
            let pairs = [
                ("task", "sst2"),
                ("method", method),
                ("lr", "0.01"),
                ("precision", precision),
            ];
            RunSettings::from_values(&values(&pairs), "s.toml")
        };
        let err = with("ft", "bf16").unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("\"precision\" bf16") && err.contains("ft trains every weight"),
            "{err}"
        );
        let half = with("lora", "f16").unwrap();
        assert_eq!(half.precision, Precision::F16);
        let json = serde_json::to_string(&with("pt2", "f32").unwrap()).unwrap();
        assert!(!json.contains("precision"), "{json}");
        assert!(serde_json::to_string(&half)
            .unwrap()
            .contains("\"precision\":\"f16\""));
        assert_ne!(
            with("pt2", "bf16").unwrap().id(),
            with("pt2", "f32").unwrap().id()
        );
    }

    #[test]
    fn config_json_round_trips_and_old_ones_still_read() {
        let s = RunSettings::from_values(
            &values(&[
                ("task", "rte"),
                ("method", "pt2"),
                ("lr", "0.01"),
                ("prefix_layers", "top:2"),
                ("schedule", "exp:0.95"),
            ]),
            "t",
        )
        .unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(RunSettings::from_config_json(&json, "c").unwrap(), s);
        let old = r#"{"model":"minilm-l6","task":"rte","method":"pt2","prompt_len":16,"reparam_hidden":null,"layers":"top:2","lr":0.01,"epochs":3,"batch_size":16,"seed":1,"max_train":null,"max_eval":null,"max_len":128,"dropout":0.1,"schedule":{"kind":"exponential","gamma":0.95}}"#;
        assert_eq!(RunSettings::from_config_json(old, "c").unwrap(), s);
    }

    #[test]
    fn the_key_is_every_setting_but_the_seed() {
        let of = |seed: &str, dropout: &str| {
            RunSettings::from_values(
                &values(&[
                    ("task", "sst2"),
                    ("method", "pt2"),
                    ("lr", "0.01"),
                    ("seed", seed),
                    ("dropout", dropout),
                ]),
                "t",
            )
            .unwrap()
            .key()
        };
        assert_eq!(of("1", "0.1"), of("2", "0.1"));
        assert_ne!(of("1", "0.1"), of("1", "0.2"));
        assert!(of("1", "0.1").contains("dropout=0.1") && !of("1", "0.1").contains("seed"));
    }

    /// A PT2 run from before `batching`'s default became `random`: its values, its settings,
    /// its config.json (which has no `batching` key).
    fn grouped_pt2() -> (Vec<(String, String)>, RunSettings, String) {
        let base = values(&[
            ("task", "sst2"),
            ("method", "pt2"),
            ("lr", "0.01"),
            ("batching", "grouped"),
        ]);
        let plain = RunSettings::from_values(&base, "t").unwrap();
        let json = serde_json::to_string(&plain).unwrap();
        (base, plain, json)
    }

    #[test]
    fn later_settings_at_their_defaults_leave_the_id_alone() {
        let (base, plain, json) = grouped_pt2();
        let serde_json::Value::Object(mut fields) = serde_json::to_value(&plain).unwrap() else {
            unreachable!()
        };
        // config.json leaves out exactly the later settings, each at what its absence means.
        let written: Vec<String> = fields.keys().cloned().collect();
        let mut every: Vec<String> = written.clone();
        for (key, _) in LATER_SETTINGS {
            assert!(!written.iter().any(|k| k == key), "{key} in {json}");
            every.push(key.to_string());
        }
        every.sort();
        let mut keys = RunSettings::keys();
        keys.sort();
        assert_eq!(every, keys, "every setting is written or a later setting");
        RunSettings::fill_omitted(&mut fields);
        let read = RunSettings::from_config_json(&serde_json::to_string(&fields).unwrap(), "t");
        assert_eq!(read.unwrap().id(), plain.id(), "filled in, the same run");
        let mut explicit = base.clone();
        explicit.extend(values(&[("subset", "random"), ("framework", "ptv2")]));
        assert_eq!(
            RunSettings::from_values(&explicit, "t").unwrap().id(),
            plain.id()
        );
    }

    #[test]
    fn a_later_setting_away_from_its_default_is_another_run() {
        let (base, plain, json) = grouped_pt2();
        // Today's default batching is random: another run, and a listing says so of the old one.
        let today = RunSettings::from_values(&base[..3], "t").unwrap();
        assert_eq!(today.batching, Batching::Random);
        assert_ne!(today.id(), plain.id());
        assert_eq!(
            plain.away_from_default(),
            [("batching", "grouped".to_string())]
        );
        assert!(today.away_from_default().is_empty());
        let old_json = json.replace(r#","batching":"grouped""#, "");
        let read = RunSettings::from_config_json(&old_json, "config.json").unwrap();
        assert_eq!((read.batching, read.id()), (Batching::Grouped, plain.id()));
        let mut other = base.clone();
        other.extend(values(&[
            ("framework", "pytorch"),
            ("prefix_init", "normal:1"),
        ]));
        let other = RunSettings::from_values(&other, "t").unwrap();
        assert_ne!(other.id(), plain.id());
        assert!(
            other.key().contains("framework=pytorch")
                && other.key().contains("prefix_init=normal:1")
        );
        let err = RunSettings::from_values(
            &[base, values(&[("prefix_init", "normal:-1")])].concat(),
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("normal:STD (STD > 0)"), "{err}");
    }

    #[test]
    fn prefix_dropout_is_its_own_setting() {
        let (base, plain, _) = grouped_pt2();
        let with = |extra: &[(&str, &str)]| {
            RunSettings::from_values(&[base.clone(), values(extra)].concat(), "s.toml")
        };
        let off = with(&[("prefix_dropout", "0")]).unwrap();
        assert_ne!(off.id(), plain.id(), "no prefix dropout is another run");
        assert_eq!((off.dropout, off.tuning.prefix_dropout), (0.1, Some(0.0)));
        assert!(off
            .away_from_default()
            .contains(&("prefix_dropout", "0.0".to_string())));
        let err = format!("{:#}", with(&[("prefix_dropout", "1.5")]).unwrap_err());
        assert!(
            err.contains("\"prefix_dropout\" must be in [0, 1)"),
            "{err}"
        );
        let ft = |extra: &[(&str, &str)]| {
            let mut v = values(&[("task", "sst2"), ("method", "ft"), ("lr", "1e-5")]);
            v.extend(values(extra));
            RunSettings::from_values(&v, "t").unwrap().id()
        };
        assert_eq!(ft(&[("prefix_dropout", "0")]), ft(&[]), "FT has no prefix");
        let same = with(&[("prefix_dropout", "0.1")]).unwrap();
        assert_eq!(
            same.id(),
            plain.id(),
            "the run's own dropout is the default"
        );
    }

    #[test]
    fn experiments_readme_holds_the_generated_schema() {
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/README.md"),
        )
        .unwrap();
        let table = schema_markdown();
        assert!(
            readme.contains(&table),
            "experiments/README.md's key table is out of date; replace it with `ptv2 settings`:\n{table}"
        );
    }
}
