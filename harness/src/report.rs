//! `reports/NAME/report.md`: what was run (the sweep file, git revision, backend, machine, total
//! time), the summary tables, the charts, and one paragraph per task comparing PT2 with FT and PT.
//! A pure function of the results rows, so `ptv2 report NAME` rebuilds it without training.

use std::path::Path;

use anyhow::Result;

use crate::results::{summary_markdown, ResultRow, SummaryRow};

fn best<'a>(summary: &'a [SummaryRow], task: &str, method: &str) -> Option<&'a SummaryRow> {
    summary
        .iter()
        .filter(|r| r.task == task && r.method == method)
        .max_by(|a, b| a.mean.total_cmp(&b.mean))
}

fn describe(r: &SummaryRow) -> String {
    let p = if r.method == "ft" {
        String::new()
    } else {
        format!(", P={}", r.prompt_len)
    };
    format!(
        "{:.4} ± {:.4} (n={}{p}, lr {}, {} trainable = {:.3}%)",
        r.mean, r.std, r.n, r.lr, r.trainable_params, r.trainable_percent
    )
}

/// One paragraph per task: PT2's best against FT's and PT's best.
pub fn comparisons(summary: &[SummaryRow]) -> String {
    let tasks: std::collections::BTreeSet<&str> = summary.iter().map(|r| r.task.as_str()).collect();
    let mut out = String::new();
    for task in tasks {
        let metric = summary
            .iter()
            .find(|r| r.task == task)
            .map_or("score", |r| r.metric.as_str());
        let (ft, pt, pt2) = (
            best(summary, task, "ft"),
            best(summary, task, "pt"),
            best(summary, task, "pt2"),
        );
        out.push_str(&format!("**{task}** (dev {metric}). "));
        match pt2 {
            Some(p2) => {
                out.push_str(&format!("PT2's best is {}. ", describe(p2)));
                if let Some(f) = ft {
                    let gap = p2.mean - f.mean;
                    out.push_str(&format!(
                        "FT's best is {}: PT2 is {:.2} points {} FT while training {:.1}× fewer parameters. ",
                        describe(f),
                        100.0 * gap.abs(),
                        if gap >= 0.0 { "above" } else { "below" },
                        f.trainable_params as f64 / p2.trainable_params.max(1) as f64
                    ));
                }
                if let Some(p) = pt {
                    out.push_str(&format!(
                        "PT's best is {}: PT2 is {:.2} points {} PT.",
                        describe(p),
                        100.0 * (p2.mean - p.mean).abs(),
                        if p2.mean >= p.mean { "above" } else { "below" }
                    ));
                }
            }
            None => {
                for (name, r) in [("FT", ft), ("PT", pt)] {
                    if let Some(r) = r {
                        out.push_str(&format!("{name}'s best is {}. ", describe(r)));
                    }
                }
            }
        }
        out.push_str("\n\n");
    }
    out
}

pub struct ReportContext<'a> {
    pub name: &'a str,
    pub sweep_file: &'a Path,
    pub device: &'a str,
    pub charts: &'a [std::path::PathBuf],
}

pub fn write_report(
    rows: &[ResultRow],
    summary: &[SummaryRow],
    ctx: &ReportContext,
    dir: &Path,
) -> Result<()> {
    let sweep_text = std::fs::read_to_string(ctx.sweep_file).unwrap_or_default();
    let runs: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    let ok = rows
        .iter()
        .filter(|r| r.status == "ok")
        .map(|r| r.run_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let failed: Vec<&ResultRow> = rows.iter().filter(|r| r.status != "ok").collect();
    let train_seconds: f64 = rows
        .iter()
        .filter(|r| r.main)
        .filter_map(|r| r.wall_seconds)
        .sum();
    let mut md = format!("# Sweep `{}`\n\n", ctx.name);
    md.push_str(&format!(
        "- sweep file: `{}`\n- git revision: {}\n- backend: {}\n- machine: {} CPU threads, {}\n- runs: {} finished ({} ok, {} failed or diverged)\n- total training wall time: {:.1} min\n\n",
        ctx.sweep_file.display(),
        crate::io::git_revision(),
        ctx.device,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::consts::ARCH,
        runs.len(),
        ok,
        failed.len(),
        train_seconds / 60.0
    ));
    md.push_str("## PT2 vs FT and PT\n\n");
    md.push_str(&comparisons(summary));
    md.push_str("## Summary over seeds (main dev metric; the best epoch of each run)\n\n");
    md.push_str(&summary_markdown(summary));
    md.push_str("\n## Charts\n\n");
    for png in ctx.charts {
        let rel = png.strip_prefix(dir).unwrap_or(png);
        md.push_str(&format!("![{}]({})\n\n", rel.display(), rel.display()));
    }
    if !failed.is_empty() {
        md.push_str("## Failed runs\n\n");
        for r in failed {
            md.push_str(&format!(
                "- `{}` {} {}: {} — {}\n",
                r.run_id,
                r.task,
                r.method,
                r.status,
                r.error.clone().unwrap_or_default()
            ));
        }
        md.push('\n');
    }
    md.push_str(&format!(
        "## The sweep file\n\n```toml\n{}\n```\n",
        sweep_text.trim_end()
    ));
    crate::io::write_atomic(&dir.join("report.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::summarize;

    #[test]
    fn comparison_names_the_gap_and_the_parameter_ratio() {
        let mut rows = vec![];
        for (method, value, trainable) in [("ft", 0.80, 1000), ("pt", 0.60, 20), ("pt2", 0.78, 100)]
        {
            let mut r = crate::results::tests_support::row(
                "sst2",
                method,
                if method == "ft" { 0 } else { 16 },
                1,
                value,
            );
            r.trainable_params = Some(trainable);
            rows.push(r);
        }
        let text = comparisons(&summarize(&rows));
        assert!(
            text.contains("PT2 is 2.00 points below FT while training 10.0× fewer parameters"),
            "{text}"
        );
        assert!(text.contains("PT2 is 18.00 points above PT"), "{text}");
    }
}
