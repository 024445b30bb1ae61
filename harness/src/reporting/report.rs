//! `reports/NAME/report.md`: what was run (the sweep file, git revision, backend, machine, total
//! time), a verdict per task that never calls a difference a win when it is inside the noise or at
//! the majority-class level, the paired bootstrap of PT − FT, PT2 − FT and LoRA − FT, what a point costs, the
//! summary tables, the charts. A pure function of the finished runs' records, so `ptv2 report
//! NAME` rebuilds it without training.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;

use ptv2_models::MethodKind;

use crate::records::references::{references_in, Reference};
use crate::records::run_dir::{PlannedRun, SweepDir};
use crate::records::search_record::SearchRecord;
use crate::records::settings::Framework;
use crate::reporting::charts::{framework_sets, tasks_with_other_frameworks, varying_settings};

use crate::reporting::results::{
    best, config_cells, runs_of, summary_markdown, ResultRow, RunRecord, SummaryRow,
};
use crate::reporting::stats::{paired_bootstrap, Interval, Predictions};

/// Bootstrap resamples of the dev set.
const RESAMPLES: usize = 1000;
/// Within this many points (0-1 scale) of FT counts as "within one point".
const ONE_POINT: f64 = 0.01;
/// A method less than this far above the majority-class level learned (next to) nothing.
const CHANCE_MARGIN: f64 = 0.02;

fn describe(r: &SummaryRow) -> String {
    let p = if !r.settings.tuning.method.has_prompts() {
        String::new()
    } else {
        format!(", P={}", r.settings.tuning.prompt_len)
    };
    let init = if r.settings.init().is_empty() || r.settings.init() == "random" {
        String::new()
    } else {
        format!(", init {}", r.settings.init())
    };
    format!(
        "{:.4} ± {:.4} (n={}{p}{init}, lr {}, {} epochs, {} trainable = {:.3}%)",
        r.mean,
        r.std,
        r.n,
        r.settings.lr,
        r.settings.epochs,
        r.trainable_params,
        r.trainable_percent
    )
}

/// Is a configuration's mean at the majority-class level?
fn at_chance(r: &SummaryRow) -> bool {
    r.majority.is_some_and(|m| r.mean < m + CHANCE_MARGIN)
}

/// A paired comparison of two methods' best configurations on one task.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub model: String,
    pub task: String,
    pub method: MethodKind,
    pub metric: String,
    pub interval: Option<Interval>,
}

fn predictions_of(records: &[RunRecord], r: &SummaryRow) -> Option<Vec<Predictions>> {
    runs_of(records, r)
        .map(|(rec, m)| {
            let file = ["dev_predictions.tsv", "dev_predictions.conll"]
                .iter()
                .map(|f| rec.dir.join(f))
                .find(|p| p.is_file())?;
            Predictions::read(&file, &m.labels, &m.main_metric).ok()
        })
        .collect()
}

/// Every (model, task) of a summary, in order.
fn model_tasks(summary: &[SummaryRow]) -> BTreeSet<(&str, &str)> {
    summary
        .iter()
        .map(|r| (r.settings.model.as_str(), r.settings.task.as_str()))
        .collect()
}

/// The methods each task's verdict sets against FT (the paper's reference), in the paper's order.
fn compared() -> impl Iterator<Item = MethodKind> {
    MethodKind::ALL.into_iter().filter(|m| *m != MethodKind::Ft)
}

/// "PT, PT2 and LoRA": the short labels of the compared methods the summary has, for headings.
fn compared_names(summary: &[SummaryRow]) -> String {
    let names: Vec<&str> = compared()
        .filter(|m| summary.iter().any(|r| r.settings.tuning.method == *m))
        .map(|m| m.facts().short)
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// The paired bootstrap of PT − FT, PT2 − FT and LoRA − FT (best configuration of each) for every task
/// whose runs saved class or tag predictions; None where they did not (QA).
pub fn comparisons(records: &[RunRecord], summary: &[SummaryRow]) -> Vec<Comparison> {
    let pairs = model_tasks(summary);
    let mut out = vec![];
    for (model, task) in pairs {
        let Some(ft) = best(summary, model, task, MethodKind::Ft) else {
            continue;
        };
        // Read once per task: FT is the other side of both comparisons.
        let ft_predictions = predictions_of(records, ft);
        for method in compared() {
            let Some(other) = best(summary, model, task, method) else {
                continue;
            };
            let interval = predictions_of(records, other)
                .zip(ft_predictions.as_ref())
                .and_then(|(a, b)| paired_bootstrap(&a, b, RESAMPLES, 0).ok());
            out.push(Comparison {
                model: model.into(),
                task: task.into(),
                method,
                metric: ft.metric.clone(),
                interval,
            });
        }
    }
    out
}

fn points(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

/// One sentence on `method` against FT: within a point, below, above, or inside the noise.
fn against_ft(name: &str, r: &SummaryRow, ft: &SummaryRow, interval: Option<&Interval>) -> String {
    if at_chance(r) {
        return format!(
            "{name} is at the majority-class level ({:.4} vs {:.4}): it learned next to nothing here. ",
            r.mean,
            r.majority.unwrap_or_default()
        );
    }
    let gap = r.mean - ft.mean;
    let interval_text = interval.map(|i| {
        format!(
            "paired bootstrap 95% interval [{}, {}]",
            points(i.lo),
            points(i.hi)
        )
    });
    let significant = interval.map_or(
        gap.abs() > 2.0 * (r.std.powi(2) + ft.std.powi(2)).sqrt(),
        Interval::excludes_zero,
    );
    let side = if gap > 0.0 { "above" } else { "below" };
    let bracketed = interval_text
        .as_ref()
        .map_or(String::new(), |t| format!(" ({t})"));
    if gap.abs() <= ONE_POINT {
        let ci = interval_text.map_or(String::new(), |t| format!("; {t}"));
        format!(
            "{name} is within one point of FT ({} points{ci}). ",
            points(gap)
        )
    } else if !significant {
        format!(
            "{name} is {} points {side} FT, but that is inside the noise{bracketed}: no difference is shown. ",
            points(gap.abs())
        )
    } else {
        format!(
            "{name} is {} points {side} FT{bracketed}. ",
            points(gap.abs())
        )
    }
}

/// One paragraph per task: the majority level, FT, then PT, PT2 and LoRA against FT.
pub fn verdicts(summary: &[SummaryRow], comparisons: &[Comparison]) -> String {
    let pairs = model_tasks(summary);
    let many_models = pairs.iter().map(|p| p.0).collect::<BTreeSet<_>>().len() > 1;
    let mut out = String::new();
    for (model, task) in pairs {
        let of = |method| best(summary, model, task, method);
        let Some(any) = summary
            .iter()
            .find(|r| r.settings.model == model && r.settings.task == task)
        else {
            continue;
        };
        let name = if many_models {
            format!("{task} ({model})")
        } else {
            task.to_string()
        };
        out.push_str(&format!("**{name}** (dev {}", any.metric));
        match any.majority {
            Some(m) => out.push_str(&format!("; majority class {m:.4}). ")),
            None => out.push_str("). "),
        }
        let interval = |method: MethodKind| {
            comparisons
                .iter()
                .find(|c| c.model == model && c.task == task && c.method == method)
                .and_then(|c| c.interval.as_ref())
        };
        match of(MethodKind::Ft) {
            Some(ft) if at_chance(ft) => out.push_str(&format!(
                "FT's best is {}, at the majority-class level: this task does not separate the methods at this budget, and no comparison is drawn. ",
                describe(ft)
            )),
            Some(ft) => {
                out.push_str(&format!("FT's best is {}. ", describe(ft)));
                for method in compared() {
                    let label = method.facts().short;
                    if let Some(r) = of(method) {
                        out.push_str(&format!("{label}'s best is {}: ", describe(r)));
                        out.push_str(&against_ft(label, r, ft, interval(method)));
                    }
                }
            }
            None => {
                for method in compared() {
                    let label = method.facts().short;
                    if let Some(r) = of(method) {
                        out.push_str(&format!("{label}'s best is {}. ", describe(r)));
                    }
                }
            }
        }
        out.push_str("\n\n");
    }
    out
}

fn bootstrap_markdown(comparisons: &[Comparison]) -> String {
    if comparisons.is_empty() {
        return "No task has FT runs beside PT or PT2 to compare with.\n".into();
    }
    let mut out = String::from("| model | task | difference | metric | points | 95% interval | reading |\n|---|---|---|---|---|---|---|\n");
    for c in comparisons {
        let (diff, ci, reading) = match &c.interval {
            Some(i) => (
                points(i.diff),
                format!("[{}, {}]", points(i.lo), points(i.hi)),
                if i.excludes_zero() {
                    "a difference"
                } else {
                    "inside the noise"
                },
            ),
            None => ("–".into(), "–".into(), "no predictions to resample"),
        };
        out.push_str(&format!(
            "| {} | {} | {} − FT | {} | {diff} | {ci} | {reading} |\n",
            c.model,
            c.task,
            c.method.facts().short,
            c.metric
        ));
    }
    out
}

fn cost_markdown(summary: &[SummaryRow]) -> String {
    let mut out = String::from("| model | task | method | P | init | lr | epochs | best mean | epochs to within 1 pt of FT | seconds to within 1 pt | seeds that got there |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in summary {
        let cell = |v: Option<f64>, digits: usize| match (s.ft_target, v) {
            (None, _) => "no FT run".to_string(),
            (Some(_), None) => "not reached".to_string(),
            (Some(_), Some(v)) => format!("{v:.digits$}"),
        };
        out.push_str(&format!(
            "{} {:.4} | {} | {} | {}/{} |\n",
            config_cells(s),
            s.mean,
            cell(s.epochs_to_ft, 1),
            cell(s.seconds_to_ft, 0),
            s.reached_ft,
            s.n
        ));
    }
    out
}

pub struct ReportContext<'a> {
    pub name: &'a str,
    pub sweep_file: &'a Path,
    pub device: &'a str,
    pub charts: &'a [std::path::PathBuf],
    /// A search sweep's record and its charts.
    pub search: Option<(&'a SearchRecord, Vec<std::path::PathBuf>)>,
}

/// The sweep's best mean of each method a `[[reference]]` names, beside the published score of
/// the same method on the same task with a larger model (empty without references).
fn references_markdown(summary: &[SummaryRow], references: &[Reference]) -> String {
    if references.is_empty() {
        return String::new();
    }
    let mut md = String::from("## Beside published numbers at larger scale

This sweep's best configuration of each method (mean ± std over seeds of the best dev epoch, in points) next to what the paper's authors published for the same method and task with a larger model. The protocols differ (data size, epochs, dev or test split; each source says which): the comparison places this sweep's model on the claim's scale axis, it does not test ptv2.\n\n| task | method | this sweep (model) | published | published model | source |\n|---|---|---|---|---|---|\n");
    for r in references {
        let ours = best_of_method(summary, &r.task, r.method).map_or("– (not run)".into(), |s| {
            format!(
                "{:.2} ± {:.2} ({})",
                s.mean * 100.0,
                s.std * 100.0,
                s.settings.model
            )
        });
        md.push_str(&format!(
            "| {} | {} | {ours} | {:.1} | {} | {} |\n",
            r.task,
            r.method.facts().short,
            r.score,
            r.model,
            r.source
        ));
    }
    md.push('\n');
    md
}

/// The configuration of `method` on `task` with the highest mean.
fn best_of_method<'a>(
    summary: &'a [SummaryRow],
    task: &str,
    method: MethodKind,
) -> Option<&'a SummaryRow> {
    summary
        .iter()
        .filter(|s| s.settings.task == task && s.settings.tuning.method == method)
        .max_by(|a, b| a.mean.total_cmp(&b.mean))
}

/// ptv2's runs beside the same configurations in PyTorch + PEFT — replayed on ptv2's batches
/// (`pytorch`) and trained by PEFT's own loop (`peft-native`) — configuration by configuration;
/// empty when the sweep ran ptv2 alone.
fn framework_markdown(summary: &[SummaryRow]) -> String {
    let tasks = tasks_with_other_frameworks(summary);
    if tasks.is_empty() {
        return String::new();
    }
    let mut md = String::from("## ptv2 beside PyTorch + transformers + PEFT\n\n");
    md.push_str("The replay (`framework = pytorch`, `tools/reference/replay.py`) trains each ptv2 run again from the same initial weights, on the same batches, at the same learning rates: it tests ptv2's arithmetic. PEFT's own loop (`peft-native`) trains the configuration as PEFT's users do: PEFT's and transformers' inits, no prefix dropout, its own shuffled batches; ptv2 only tokenizes and scores; where a task ran it in one configuration, every ptv2 configuration is measured against it. Best dev epoch, mean ± std over seeds.\n\n");
    md.push_str("| task | configuration | metric | ptv2 | replay | PEFT's own loop | ptv2 − replay (points) | ptv2 − PEFT's own (points) |\n|---|---|---|---|---|---|---|---|\n");
    let cell = |r: Option<&SummaryRow>| {
        r.map_or("–".to_string(), |r| {
            format!("{:.4} ± {:.4} (n={})", r.mean, r.std, r.n)
        })
    };
    let gap = |a: Option<&SummaryRow>, b: Option<&SummaryRow>| {
        a.zip(b)
            .map_or("–".to_string(), |(a, b)| points(a.mean - b.mean))
    };
    for task in tasks {
        let rows: Vec<&SummaryRow> = summary.iter().filter(|r| r.settings.task == task).collect();
        let sets = framework_sets(&rows, varying_settings);
        // PEFT's own loop follows none of ptv2's prefix, init or batching settings: where the
        // task ran it in one configuration, every ptv2 configuration is measured against it.
        let natives: Vec<&SummaryRow> = sets.iter().filter_map(|set| set.by[2]).collect();
        let only_native = (natives.len() == 1).then(|| natives[0]);
        for set in sets {
            let [ours, replay, native] = set.by;
            md.push_str(&format!(
                "| {task} | {} | {} | {} | {} | {} | {} | {} |\n",
                set.label,
                rows[0].metric,
                cell(ours),
                cell(replay),
                cell(native),
                gap(ours, replay),
                gap(ours, native.or(only_native))
            ));
        }
    }
    md.push('\n');
    md
}

/// The report's title and what it was made from: sweep file, revision, machine, runs, time.
fn header_markdown(records: &[RunRecord], failed: usize, ctx: &ReportContext) -> String {
    let ok = records.iter().filter(|r| r.metrics.is_some()).count();
    let train_seconds: f64 = records
        .iter()
        .filter_map(|r| r.metrics.as_ref())
        .map(|m| m.wall_seconds)
        .sum();
    format!(
        "# Sweep `{}`\n\n- sweep file: `{}`\n- git revision: {}\n- backend: {}\n- machine: {} CPU threads, {}\n- runs: {} finished ({} ok, {} failed or diverged)\n- total training wall time, summed over runs: {:.1} min\n\n",
        ctx.name,
        ctx.sweep_file.display(),
        crate::records::io::git_revision(),
        ctx.device,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::consts::ARCH,
        records.len(),
        ok,
        failed,
        train_seconds / 60.0
    )
}

/// The failed and diverged runs with their errors; empty when there are none.
fn failed_markdown(failed: &[&ResultRow]) -> String {
    if failed.is_empty() {
        return String::new();
    }
    let mut md = String::from("## Failed and diverged runs\n\n");
    for r in failed {
        md.push_str(&format!(
            "- `{}` {} {}: {} — {}\n",
            r.run_id,
            r.settings.task,
            r.settings.tuning.method,
            r.status,
            r.error.clone().unwrap_or_default()
        ));
    }
    md.push('\n');
    md
}

pub fn write_report(
    records: &[RunRecord],
    rows: &[ResultRow],
    summary: &[SummaryRow],
    ctx: &ReportContext,
    dir: &Path,
) -> Result<()> {
    let sweep_text = std::fs::read_to_string(ctx.sweep_file).unwrap_or_default();
    let failed: Vec<&ResultRow> = rows.iter().filter(|r| r.status != "ok").collect();
    let mut md = header_markdown(records, failed.len(), ctx);
    // The method verdicts are about ptv2's own runs; replays are compared with them below.
    let own: Vec<SummaryRow> = summary
        .iter()
        .filter(|r| r.settings.framework == Framework::Ptv2)
        .cloned()
        .collect();
    let comparisons = comparisons(records, &own);
    md.push_str(&framework_markdown(summary));
    md.push_str(&references_markdown(&own, &references_in(&sweep_text)));
    md.push_str(&format!("## {} against FT\n\n", compared_names(&own)));
    md.push_str("Each method's best configuration (mean over seeds of the best dev epoch, the paper's protocol). ");
    md.push_str("A difference counts only when the paired bootstrap's 95% interval leaves out zero; a method less than 2 points above the majority-class level learned next to nothing.\n\n");
    md.push_str(&verdicts(&own, &comparisons));
    md.push_str(&format!("## Paired bootstrap ({RESAMPLES} resamples of the dev set, best-epoch predictions, mean over seeds)\n\n"));
    md.push_str(&bootstrap_markdown(&comparisons));
    md.push_str("\n## What a point costs\n\nEpochs and wall seconds until a run's dev score first comes within one point of FT's best mean (from the per-epoch curves in metrics.json), mean over the seeds that got there.\n\n");
    md.push_str(&cost_markdown(summary));
    md.push_str("\n## Summary over seeds (main dev metric)\n\nThe best epoch is what the paper reports; the last epoch beside it shows how much of the best is a maximum over noisy epochs.\n\n");
    md.push_str(&summary_markdown(summary));
    if let Some((record, charts)) = &ctx.search {
        md.push('\n');
        md.push_str(&super::search::search_markdown(record, charts, dir));
    }
    md.push_str("\n## Charts\n\n");
    for png in ctx.charts {
        let rel = png.strip_prefix(dir).unwrap_or(png);
        md.push_str(&format!("![{}]({})\n\n", rel.display(), rel.display()));
    }
    md.push_str(&failed_markdown(&failed));
    md.push_str(&format!(
        "## The sweep file\n\n```toml\n{}\n```\n",
        sweep_text.trim_end()
    ));
    crate::records::io::write_atomic(&dir.join("report.md"), md.as_bytes())?;
    super::html::write_html(&md, records, &format!("Sweep {}", ctx.name), dir)
}

/// Tables, charts and report.md of a sweep (`dir`, named `name`, from `sweep_file`), from its
/// runs' files alone: what `ptv2 report`, `ptv2 sweep` and `ptv2 slurm --wait` end with.
pub fn build(
    dir: &SweepDir,
    name: &str,
    sweep_file: &Path,
    runs: &[PlannedRun],
    device: &str,
    search: Option<&SearchRecord>,
) -> Result<()> {
    let records = crate::reporting::results::collect(runs, dir)?;
    let (rows, summary) = crate::reporting::results::write_tables(&records, dir.path())?;
    let charts = crate::reporting::charts::draw_all(&summary, &dir.path().join("charts"))?;
    let search = match search {
        Some(record) => {
            crate::records::io::write_json(&dir.path().join("search.json"), record)?;
            let charts = super::search::draw_search(record, &dir.path().join("charts"))?;
            Some((record, charts))
        }
        None => None,
    };
    let ctx = ReportContext {
        name,
        sweep_file,
        device,
        charts: &charts,
        search,
    };
    write_report(&records, &rows, &summary, &ctx, dir.path())?;
    eprintln!(
        "wrote {} ({} rows, {} charts)",
        dir.path().join("report.md").display(),
        rows.len(),
        charts.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporting::results::summarize;

    fn summary_of(values: &[(&str, f64)]) -> Vec<SummaryRow> {
        let rows: Vec<ResultRow> = values
            .iter()
            .map(|(method, value)| {
                crate::reporting::results::tests_support::row(
                    "sst2",
                    method,
                    if *method == "ft" { 0 } else { 16 },
                    1,
                    *value,
                )
            })
            .collect();
        summarize(&rows)
    }

    fn comparison(method: &str, lo: f64, hi: f64) -> Comparison {
        Comparison {
            model: "m".into(),
            task: "sst2".into(),
            method: method.parse().unwrap(),
            metric: "accuracy".into(),
            interval: Some(Interval {
                diff: (lo + hi) / 2.0,
                lo,
                hi,
            }),
        }
    }

    #[test]
    fn the_heading_names_the_methods_compared_with_ft_that_ran() {
        let all = summary_of(&[("ft", 0.8), ("pt", 0.7), ("pt2", 0.78), ("lora", 0.79)]);
        assert_eq!(compared_names(&all), "PT, PT2 and LoRA");
        let no_lora = summary_of(&[("ft", 0.8), ("pt", 0.7), ("pt2", 0.78)]);
        assert_eq!(compared_names(&no_lora), "PT and PT2");
    }

    #[test]
    fn a_gap_inside_the_interval_is_not_a_win() {
        let summary = summary_of(&[("ft", 0.80), ("pt2", 0.83), ("pt", 0.60)]);
        let text = verdicts(
            &summary,
            &[
                comparison("pt2", -0.01, 0.07),
                comparison("pt", -0.25, -0.15),
            ],
        );
        assert!(
            text.contains("PT2 is 3.00 points above FT, but that is inside the noise"),
            "{text}"
        );
        assert!(
            text.contains(
                "PT is 20.00 points below FT (paired bootstrap 95% interval [-25.00, -15.00])"
            ),
            "{text}"
        );
    }

    #[test]
    fn chance_level_and_one_point_are_said_as_such() {
        let summary = summary_of(&[("ft", 0.80), ("pt2", 0.795), ("pt", 0.51)]);
        let text = verdicts(&summary, &[comparison("pt2", -0.03, 0.02)]);
        assert!(
            text.contains(
                "PT2 is within one point of FT (-0.50 points; paired bootstrap 95% interval [-3.00, 2.00])"
            ),
            "{text}"
        );
        assert!(text.contains("PT is at the majority-class level"), "{text}");
        let summary = summary_of(&[("ft", 0.51), ("pt2", 0.55)]);
        let text = verdicts(&summary, &[]);
        assert!(
            text.contains("no comparison is drawn") && !text.contains("above FT"),
            "{text}"
        );
    }

    #[test]
    fn replays_are_compared_with_their_runs_and_left_out_of_the_verdicts() {
        let other = |framework: Framework, seed: u64, value: f64, init: Option<&str>| {
            let mut r =
                crate::reporting::results::tests_support::row("sst2", "pt2", 16, seed, value);
            r.settings.framework = framework;
            if let Some(init) = init {
                r.settings.tuning.prefix_init = ptv2_models::PromptInit::parse(init).unwrap();
            }
            (r.run_id, r.setting) = (r.settings.id(), r.settings.key());
            r
        };
        let replayed = |seed: u64, value: f64, init: Option<&str>| {
            other(Framework::Pytorch, seed, value, init)
        };
        let ours = |seed: u64, value: f64| {
            crate::reporting::results::tests_support::row("sst2", "pt2", 16, seed, value)
        };
        let rows = vec![
            ours(1, 0.80),
            ours(2, 0.82),
            replayed(1, 0.79, None),
            replayed(2, 0.81, None),
            replayed(1, 0.70, Some("normal:1")),
            other(Framework::Ptv2, 1, 0.78, Some("normal:1")),
            other(Framework::PeftNative, 1, 0.83, None),
        ];
        let mut summary = summarize(&rows);
        let text = framework_markdown(&summary);
        assert!(
            text.contains("| sst2 | defaults | accuracy | 0.8100 ± 0.0141 (n=2) | 0.8000 ± 0.0141 (n=2) | 0.8300 ± 0.0000 (n=1) | 1.00 | -2.00 |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| sst2 | prefix_init normal:1 | accuracy | 0.7800 ± 0.0000 (n=1) | 0.7000 ± 0.0000 (n=1) | – | 8.00 | -5.00 |"
            ),
            "PEFT's own loop, run in one configuration, measures every ptv2 configuration: {text}"
        );
        assert_eq!(framework_markdown(&summary_of(&[("pt2", 0.8)])), "");
        let dir = tempfile::tempdir().unwrap();
        for row in &mut summary {
            row.curve = vec![row.mean - 0.1, row.mean];
        }
        let charts = crate::reporting::charts::draw_all(&summary, dir.path()).unwrap();
        for chart in ["sst2_frameworks.png", "sst2_framework_curves.png"] {
            assert!(charts.iter().any(|c| c.ends_with(chart)), "{charts:?}");
        }
    }
}
