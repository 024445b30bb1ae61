//! Sweeps are data: one TOML file of fixed settings, a grid of axes, per-method / per-task
//! overrides and exclusion rules (schema: `experiments/README.md`). Expanding it into runs is a
//! pure function; a run's id is a hash of its resolved settings, so a re-run skips what is done.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use toml::Value;

use crate::commands::{method_from, MethodOptions};
use crate::optim::Schedule;
use crate::train::RunConfig;

/// Every key a sweep may set, fixed or as an axis.
pub const KEYS: &[&str] = &[
    "model",
    "task",
    "method",
    "prompt_len",
    "reparam_hidden",
    "prefix_layers",
    "prompt_init",
    "prefix_init",
    "lr",
    "epochs",
    "batch_size",
    "seed",
    "max_train",
    "max_eval",
    "max_len",
    "dropout",
    "schedule",
];

/// One resolved run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub id: String,
    pub config: RunConfig,
}

/// A run's id: the first 12 hex digits of the sha256 of its resolved settings as JSON.
pub fn run_id(config: &RunConfig) -> String {
    let json = serde_json::to_string(config).expect("a run config serializes");
    format!("{:x}", Sha256::digest(json.as_bytes()))[..12].to_string()
}

fn check_keys<'a>(keys: impl Iterator<Item = &'a String>, at: &str) -> Result<()> {
    for key in keys {
        if !KEYS.contains(&key.as_str()) {
            bail!(
                "{at}: unknown key \"{key}\" (expected one of: {})",
                KEYS.join(", ")
            );
        }
    }
    Ok(())
}

/// Does `settings` match every condition? A condition's value may be a list: any of them.
fn matches(settings: &BTreeMap<String, Value>, conditions: &toml::Table) -> bool {
    conditions.iter().all(|(key, wanted)| {
        let actual = settings.get(key);
        match wanted {
            Value::Array(options) => options.iter().any(|o| Some(o) == actual),
            value => Some(value) == actual,
        }
    })
}

fn get<'a>(settings: &'a BTreeMap<String, Value>, key: &str, at: &str) -> Result<&'a Value> {
    settings
        .get(key)
        .with_context(|| format!("{at}: no value for \"{key}\" (set it in [fixed] or [grid])"))
}

fn as_usize(settings: &BTreeMap<String, Value>, key: &str, at: &str) -> Result<usize> {
    match get(settings, key, at)? {
        Value::Integer(i) if *i >= 0 => Ok(*i as usize),
        other => bail!("{at}: \"{key}\" must be a whole number ≥ 0, found {other}"),
    }
}

fn as_f64(settings: &BTreeMap<String, Value>, key: &str, at: &str) -> Result<f64> {
    match get(settings, key, at)? {
        Value::Float(f) => Ok(*f),
        Value::Integer(i) => Ok(*i as f64),
        other => bail!("{at}: \"{key}\" must be a number, found {other}"),
    }
}

fn as_str<'a>(settings: &'a BTreeMap<String, Value>, key: &str, at: &str) -> Result<&'a str> {
    match get(settings, key, at)? {
        Value::String(s) => Ok(s),
        other => bail!("{at}: \"{key}\" must be a string, found {other}"),
    }
}

fn optional_usize(
    settings: &BTreeMap<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<usize>> {
    if settings.contains_key(key) {
        as_usize(settings, key, at).map(Some)
    } else {
        Ok(None)
    }
}

/// Settings → a run config, with defaults for the optional keys.
fn resolve(settings: &BTreeMap<String, Value>, at: &str) -> Result<RunConfig> {
    let or_default = |key: &str, default: Value| settings.get(key).cloned().unwrap_or(default);
    let mut s = settings.clone();
    s.insert(
        "prompt_len".into(),
        or_default("prompt_len", Value::Integer(16)),
    );
    s.insert(
        "prefix_layers".into(),
        or_default("prefix_layers", Value::String("all".into())),
    );
    s.insert("max_len".into(), or_default("max_len", Value::Integer(128)));
    s.insert("dropout".into(), or_default("dropout", Value::Float(0.1)));
    s.insert(
        "schedule".into(),
        or_default("schedule", Value::String("linear".into())),
    );
    for key in ["prompt_init", "prefix_init"] {
        s.insert(key.into(), or_default(key, Value::String("random".into())));
    }
    let method = method_from(
        as_str(&s, "method", at)?,
        &MethodOptions {
            prompt_len: as_usize(&s, "prompt_len", at)?,
            reparam_hidden: optional_usize(&s, "reparam_hidden", at)?,
            prefix_layers: as_str(&s, "prefix_layers", at)?,
            prompt_init: as_str(&s, "prompt_init", at)?,
            prefix_init: as_str(&s, "prefix_init", at)?,
        },
    )
    .with_context(|| at.to_string())?;
    Ok(RunConfig {
        model: as_str(&s, "model", at)?.into(),
        task: as_str(&s, "task", at)?.into(),
        method,
        lr: as_f64(&s, "lr", at)?,
        epochs: as_usize(&s, "epochs", at)?,
        batch_size: as_usize(&s, "batch_size", at)?,
        seed: as_usize(&s, "seed", at)? as u64,
        max_train: optional_usize(&s, "max_train", at)?,
        max_eval: optional_usize(&s, "max_eval", at)?,
        max_len: as_usize(&s, "max_len", at)?,
        dropout: as_f64(&s, "dropout", at)?,
        schedule: Schedule::parse(as_str(&s, "schedule", at)?)
            .map_err(|e| anyhow::anyhow!("{at}: {e}"))?,
    })
}

fn table<'a>(root: &'a toml::Table, key: &str, at: &str) -> Result<Option<&'a toml::Table>> {
    match root.get(key) {
        None => Ok(None),
        Some(Value::Table(t)) => Ok(Some(t)),
        Some(other) => bail!("{at}: [{key}] must be a table, found {other}"),
    }
}

fn tables<'a>(root: &'a toml::Table, key: &str, at: &str) -> Result<Vec<&'a toml::Table>> {
    match root.get(key) {
        None => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_table()
                    .with_context(|| format!("{at}: [[{key}]] entry {} must be a table", i + 1))
            })
            .collect(),
        Some(other) => bail!("{at}: {key} must be a list of tables ([[{key}]]), found {other}"),
    }
}

/// Expand a sweep file's text into its runs, in grid order, without duplicates.
pub fn expand(text: &str, source: &str) -> Result<Vec<PlannedRun>> {
    let root: toml::Table =
        toml::from_str(text).with_context(|| format!("{source}: not valid TOML"))?;
    for key in root.keys() {
        if !["description", "fixed", "grid", "override", "exclude"].contains(&key.as_str()) {
            bail!("{source}: unknown top-level key \"{key}\" (expected description, [fixed], [grid], [[override]], [[exclude]])");
        }
    }
    let fixed = table(&root, "fixed", source)?.cloned().unwrap_or_default();
    check_keys(fixed.keys(), &format!("{source} [fixed]"))?;
    let grid = table(&root, "grid", source)?.cloned().unwrap_or_default();
    check_keys(grid.keys(), &format!("{source} [grid]"))?;
    let mut axes: Vec<(String, Vec<Value>)> = vec![];
    for (key, values) in &grid {
        match values {
            Value::Array(v) if !v.is_empty() => axes.push((key.clone(), v.clone())),
            other => bail!("{source} [grid]: \"{key}\" must be a non-empty list, found {other}"),
        }
    }
    let overrides = tables(&root, "override", source)?;
    for (i, o) in overrides.iter().enumerate() {
        let at = format!("{source} [[override]] {}", i + 1);
        for key in o.keys() {
            if key != "when" && key != "set" {
                bail!("{at}: unknown key \"{key}\" (expected when, set)");
            }
        }
        let when = o
            .get("when")
            .and_then(Value::as_table)
            .with_context(|| format!("{at}: needs a `when` table"))?;
        let set = o
            .get("set")
            .and_then(Value::as_table)
            .with_context(|| format!("{at}: needs a `set` table"))?;
        check_keys(when.keys(), &at)?;
        check_keys(set.keys(), &at)?;
    }
    let excludes = tables(&root, "exclude", source)?;
    for (i, e) in excludes.iter().enumerate() {
        check_keys(e.keys(), &format!("{source} [[exclude]] {}", i + 1))?;
    }

    // The cross product, the last axis varying fastest.
    let mut combos: Vec<BTreeMap<String, Value>> = vec![fixed.clone().into_iter().collect()];
    for (key, values) in &axes {
        combos = combos
            .into_iter()
            .flat_map(|base| {
                values.iter().map(move |v| {
                    let mut next = base.clone();
                    next.insert(key.clone(), v.clone());
                    next
                })
            })
            .collect();
    }
    let mut runs: Vec<PlannedRun> = vec![];
    for mut settings in combos {
        for o in &overrides {
            if matches(&settings, o["when"].as_table().expect("checked")) {
                settings.extend(o["set"].as_table().expect("checked").clone());
            }
        }
        if excludes.iter().any(|e| matches(&settings, e)) {
            continue;
        }
        let described: Vec<String> = axes
            .iter()
            .filter_map(|(k, _)| settings.get(k).map(|v| format!("{k}={v}")))
            .collect();
        let config = resolve(
            &settings,
            &format!("{source} (run {})", described.join(", ")),
        )?;
        let id = run_id(&config);
        // FT ignores prompt axes: such combinations resolve to the same run.
        if !runs.iter().any(|r| r.id == id) {
            runs.push(PlannedRun { id, config });
        }
    }
    Ok(runs)
}

/// The sweep file of a sweep argument: `experiments/NAME.toml`, or the argument itself when it is
/// a path to a TOML file.
pub fn sweep_file(name: &str, experiments: &Path) -> std::path::PathBuf {
    if name.ends_with(".toml") {
        Path::new(name).to_path_buf()
    } else {
        experiments.join(format!("{name}.toml"))
    }
}

/// A sweep's name (its reports dir): the file stem of a path, else the argument.
pub fn sweep_name(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_string(), |s| s.to_string_lossy().to_string())
}

/// Expand `experiments/NAME.toml` (or a path to a TOML file).
pub fn load(name: &str, experiments: &Path) -> Result<Vec<PlannedRun>> {
    let path = sweep_file(name, experiments);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read sweep file {}", path.display()))?;
    expand(&text, &path.display().to_string())
}

/// Parse `--shard i/n` (0-based i).
pub fn parse_shard(text: &str) -> Result<(usize, usize)> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => bail!("--shard \"{text}\": expected i/n with 0 ≤ i < n"),
    }
}

/// The runs of shard `i` of `n`: every n-th run starting at i.
pub fn shard(runs: &[PlannedRun], (i, n): (usize, usize)) -> Vec<PlannedRun> {
    runs.iter().skip(i).step_by(n).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptv2_models::Method;

    const SWEEP: &str = r#"
description = "test"
[fixed]
model = "minilm-l6"
epochs = 2
batch_size = 8
seed = 1
lr = 1e-2
[grid]
task = ["rte", "sst2"]
method = ["ft", "pt2"]
prompt_len = [4, 16]
[[override]]
when = { method = "ft" }
set = { lr = 5e-5 }
[[override]]
when = { task = "sst2", method = ["pt", "pt2"] }
set = { epochs = 5 }
[[exclude]]
task = "rte"
prompt_len = 4
"#;

    #[test]
    fn expands_overrides_excludes_and_dedupes_ft() {
        let runs = expand(SWEEP, "t.toml").unwrap();
        let described: Vec<(String, String, usize, f64, usize)> = runs
            .iter()
            .map(|r| {
                (
                    r.config.task.clone(),
                    r.config.method.name().to_string(),
                    r.config.method.prompt_len(),
                    r.config.lr,
                    r.config.epochs,
                )
            })
            .collect();
        assert_eq!(
            described,
            vec![
                ("rte".into(), "ft".into(), 0, 5e-5, 2),
                ("rte".into(), "pt2".into(), 16, 1e-2, 2),
                ("sst2".into(), "ft".into(), 0, 5e-5, 2),
                ("sst2".into(), "pt2".into(), 4, 1e-2, 5),
                ("sst2".into(), "pt2".into(), 16, 1e-2, 5),
            ]
        );
        assert!(matches!(
            runs[1].config.method,
            Method::Pt2 { prompt_len: 16, .. }
        ));
    }

    #[test]
    fn ids_are_stable_hashes_of_resolved_settings() {
        let a = expand(SWEEP, "t.toml").unwrap();
        let b = expand(SWEEP, "other-name.toml").unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].id.len(), 12);
        let ids: std::collections::HashSet<_> = a.iter().map(|r| &r.id).collect();
        assert_eq!(ids.len(), a.len());
    }

    #[test]
    fn errors_name_the_key() {
        let err = expand("[fixed]\nmodle = \"x\"\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s.toml [fixed]") && err.contains("\"modle\""),
            "{err}"
        );
        let err = expand("[grid]\nlr = 0.1\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"lr\" must be a non-empty list"), "{err}");
        let bad = SWEEP.replace("batch_size = 8", "batch_size = \"eight\"");
        let err = format!("{:#}", expand(&bad, "s.toml").unwrap_err());
        assert!(
            err.contains("\"batch_size\" must be a whole number"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            expand(&SWEEP.replace("\"pt2\"]", "\"pt3\"]"), "s.toml").unwrap_err()
        );
        assert!(err.contains("unknown method \"pt3\""), "{err}");
    }

    #[test]
    fn shards_partition_the_runs() {
        let runs = expand(SWEEP, "t.toml").unwrap();
        let mut seen: Vec<String> = (0..3)
            .flat_map(|i| shard(&runs, (i, 3)))
            .map(|r| r.id)
            .collect();
        seen.sort();
        let mut all: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
        all.sort();
        assert_eq!(seen, all);
        assert!(parse_shard("3/3").is_err());
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
    }
}
