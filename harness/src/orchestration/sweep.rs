//! Sweeps are data: one TOML file of fixed settings, a grid of axes, per-method / per-task
//! overrides and exclusion rules (schema: `experiments/README.md`). Expanding it into runs is a
//! pure function; a run's id is a hash of its resolved settings, so a re-run skips what is done.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use toml::Value;

use crate::records::run_dir::PlannedRun;
use crate::records::settings::RunSettings;

fn check_keys<'a>(keys: impl Iterator<Item = &'a String>, at: &str) -> Result<()> {
    let known = RunSettings::keys();
    for key in keys {
        if !known.contains(key) {
            bail!(
                "{at}: unknown key \"{key}\" (expected one of: {})",
                known.join(", ")
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

/// A sweep value as its flag text; lists and tables are no setting's value.
fn flag_text(key: &str, value: &Value, at: &str) -> Result<String> {
    Ok(match value {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        other => bail!("{at}: \"{key}\" must be a number or a string, found {other}"),
    })
}

/// A run's settings from its keys, parsed and defaulted as `ptv2 train`'s flags are.
pub(crate) fn resolve(settings: &BTreeMap<String, Value>, at: &str) -> Result<RunSettings> {
    let values = settings
        .iter()
        .map(|(key, value)| Ok((key.clone(), flag_text(key, value, at)?)))
        .collect::<Result<Vec<_>>>()?;
    RunSettings::from_values(&values, at)
}

pub(crate) fn table<'a>(
    root: &'a toml::Table,
    key: &str,
    at: &str,
) -> Result<Option<&'a toml::Table>> {
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

/// The `[[override]]` and `[[exclude]]` tables, their keys checked. An override sets values
/// (`set`), or narrows a search's space (`search`, see `search.rs`), or both.
fn rules<'a>(
    root: &'a toml::Table,
    source: &str,
) -> Result<(Vec<&'a toml::Table>, Vec<&'a toml::Table>)> {
    let overrides = tables(root, "override", source)?;
    for (i, o) in overrides.iter().enumerate() {
        let at = format!("{source} [[override]] {}", i + 1);
        for key in o.keys() {
            if !["when", "set", "search"].contains(&key.as_str()) {
                bail!("{at}: unknown key \"{key}\" (expected when, set, search)");
            }
        }
        let when = o
            .get("when")
            .and_then(Value::as_table)
            .with_context(|| format!("{at}: needs a `when` table"))?;
        check_keys(when.keys(), &at)?;
        for part in ["set", "search"] {
            match o.get(part) {
                None => {}
                Some(Value::Table(t)) => check_keys(t.keys(), &format!("{at} {part}"))?,
                Some(other) => bail!("{at}: `{part}` must be a table, found {other}"),
            }
        }
        if !o.contains_key("set") && !o.contains_key("search") {
            bail!("{at}: needs a `set` table (or a `search` table in a search sweep)");
        }
    }
    let excludes = tables(root, "exclude", source)?;
    for (i, e) in excludes.iter().enumerate() {
        check_keys(e.keys(), &format!("{source} [[exclude]] {}", i + 1))?;
    }
    Ok((overrides, excludes))
}

/// The grid's combinations on top of the fixed settings, the last axis varying fastest.
fn cross_product(
    fixed: &toml::Table,
    axes: &[(String, Vec<Value>)],
) -> Vec<BTreeMap<String, Value>> {
    let mut combos: Vec<BTreeMap<String, Value>> = vec![fixed.clone().into_iter().collect()];
    for (key, values) in axes {
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
    combos
}

const TOP_LEVEL: [&str; 7] = [
    "description",
    "fixed",
    "grid",
    "override",
    "exclude",
    "reference",
    "search",
];

/// A sweep file's TOML, its top-level keys checked.
pub(crate) fn parse_root(text: &str, source: &str) -> Result<toml::Table> {
    let root: toml::Table =
        toml::from_str(text).with_context(|| format!("{source}: not valid TOML"))?;
    for key in root.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            bail!("{source}: unknown top-level key \"{key}\" (expected description, [fixed], [grid], [[override]], [[exclude]], [[reference]], [search])");
        }
    }
    crate::records::references::references(&root, source)?;
    Ok(root)
}

/// One combination of the grid, its overrides applied.
#[derive(Debug, Clone)]
pub struct Combo {
    pub settings: BTreeMap<String, Value>,
    /// `source (run task="sst2", method="pt2")`: where its errors point.
    pub at: String,
    /// The grid's values that name it (`task="sst2"`, …).
    pub described: Vec<String>,
    /// The `search` tables of the overrides that matched it, merged (a search narrows its space).
    pub search: toml::Table,
}

/// The grid's combinations (without the axes `held_out`) with overrides applied and excluded
/// ones dropped, in grid order.
pub(crate) fn combos(root: &toml::Table, source: &str, held_out: &[&str]) -> Result<Vec<Combo>> {
    let fixed = table(root, "fixed", source)?.cloned().unwrap_or_default();
    check_keys(fixed.keys(), &format!("{source} [fixed]"))?;
    let grid = table(root, "grid", source)?.cloned().unwrap_or_default();
    check_keys(grid.keys(), &format!("{source} [grid]"))?;
    let mut axes: Vec<(String, Vec<Value>)> = vec![];
    for (key, values) in &grid {
        match values {
            Value::Array(v) if !v.is_empty() => axes.push((key.clone(), v.clone())),
            other => bail!("{source} [grid]: \"{key}\" must be a non-empty list, found {other}"),
        }
    }
    axes.retain(|(key, _)| !held_out.contains(&key.as_str()));
    let (overrides, excludes) = rules(root, source)?;
    let mut out = vec![];
    for mut settings in cross_product(&fixed, &axes) {
        let mut search = toml::Table::new();
        for o in &overrides {
            if matches(&settings, o["when"].as_table().expect("checked")) {
                if let Some(set) = o.get("set").and_then(Value::as_table) {
                    settings.extend(set.clone());
                }
                if let Some(space) = o.get("search").and_then(Value::as_table) {
                    search.extend(space.clone());
                }
            }
        }
        if excludes.iter().any(|e| matches(&settings, e)) {
            continue;
        }
        let described: Vec<String> = axes
            .iter()
            .filter_map(|(k, _)| settings.get(k).map(|v| format!("{k}={v}")))
            .collect();
        let at = match described.is_empty() {
            true => source.to_string(),
            false => format!("{source} (run {})", described.join(", ")),
        };
        out.push(Combo {
            settings,
            at,
            described,
            search,
        });
    }
    Ok(out)
}

/// Expand a grid sweep's text into its runs, in grid order, without duplicates. A search sweep
/// has no runs before it runs: `plan::plan` reads both kinds.
pub fn expand(text: &str, source: &str) -> Result<Vec<PlannedRun>> {
    let root = parse_root(text, source)?;
    if root.contains_key("search") {
        bail!("{source}: a search sweep ([search]) draws its runs as it goes; it has no fixed list of runs");
    }
    grid_runs(&root, source)
}

/// The runs of a grid sweep's parsed TOML.
pub(crate) fn grid_runs(root: &toml::Table, source: &str) -> Result<Vec<PlannedRun>> {
    let mut runs: Vec<PlannedRun> = vec![];
    for combo in combos(root, source, &[])? {
        let run = PlannedRun::new(resolve(&combo.settings, &combo.at)?);
        // FT ignores prompt axes: such combinations resolve to the same run.
        if !runs.iter().any(|r| r.id == run.id) {
            runs.push(run);
        }
    }
    Ok(runs)
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

    /// The run ids of two committed sweeps, pinned: a run id is the hash of its config.json, so
    /// a change to how settings serialize (a new setting, a regrouping) must leave them alone or
    /// every finished run of every sweep would be trained again.
    #[test]
    fn committed_sweeps_keep_their_run_ids() {
        let ids = |name: &str| -> Vec<String> {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../experiments/{name}.toml"));
            let text = std::fs::read_to_string(&path).unwrap();
            expand(&text, name)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids("smoke"), GOLDEN_SMOKE);
        assert_eq!(ids("prompt-init"), GOLDEN_PROMPT_INIT);
    }

    const GOLDEN_SMOKE: &[&str] = &["0c75ffacf571", "d66f16442318", "43d5e088b9dd"];
    /// Computed by the code before the head and template settings existed (6dc0e6c); glue-small,
    /// pinned here before, changed its batches and methods on purpose (issues 30, 33).
    const GOLDEN_PROMPT_INIT: &[&str] = &[
        "0c75ffacf571",
        "1df42096856e",
        "944aef8802e6",
        "8f6b53fc7c3c",
        "59be43bc338a",
        "ef7bf27c08a6",
        "d66f16442318",
        "6d7fc3107edf",
        "421b1a1b1a05",
        "43d5e088b9dd",
        "11a90077192e",
        "7dda04f3e481",
        "910d6c6d2135",
        "dcd6ca6f79bd",
        "54473a735b67",
    ];

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
        let described: Vec<(String, &str, usize, f64, usize)> = runs
            .iter()
            .map(|r| {
                (
                    r.settings.task.clone(),
                    r.settings.tuning.method.name(),
                    r.settings.tuning.prompt_len,
                    r.settings.lr,
                    r.settings.epochs,
                )
            })
            .collect();
        assert_eq!(
            described,
            vec![
                ("rte".into(), "ft", 0, 5e-5, 2),
                ("rte".into(), "pt2", 16, 1e-2, 2),
                ("sst2".into(), "ft", 0, 5e-5, 2),
                ("sst2".into(), "pt2", 4, 1e-2, 5),
                ("sst2".into(), "pt2", 16, 1e-2, 5),
            ]
        );
        assert!(matches!(
            runs[1].settings.method().unwrap(),
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
            err.contains("\"batch_size\" = \"eight\" is not valid"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            expand(&SWEEP.replace("\"pt2\"]", "\"pt3\"]"), "s.toml").unwrap_err()
        );
        assert!(err.contains("\"method\" = \"pt3\" is not valid"), "{err}");
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
