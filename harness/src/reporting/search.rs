//! A search sweep's section of report.md and its charts: what each group's search found, what it
//! cost against training every trial to the end, every trial's curve coloured by its drawn value
//! (pruned ones faded), and the score against each searched setting.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::charts::{draw_mesh, epoch_plane, err, frame, method_label};
use super::charts::{note, render, task_label, y_range, Chart, Mark};
use crate::records::search_record::{settings_text, GroupRecord, SearchRecord, TrialRecord};

/// A group's short name in file names: `sst2_pt2`.
fn slug(group: &GroupRecord) -> String {
    format!("{}_{}", group.task, group.method.name())
}

fn values_text(trial: &TrialRecord) -> String {
    settings_text(&trial.values)
}

/// The report's "Search" section.
pub fn search_markdown(record: &SearchRecord, charts: &[PathBuf], dir: &Path) -> String {
    let metric = record.metric.as_deref().unwrap_or("the task's main metric");
    let mut md = format!(
        "## Search\n\n{}, {} trials per group drawn as a Latin hypercube (sampler seed {}), compared at each rung by their best dev score so far ({metric}). The best configuration of each group is then trained at every seed of the grid: the tables above are those runs.\n\n",
        record.strategy, record.trials, record.seed
    );
    md.push_str("| group | found | best trial's dev | rungs (epochs) | run-epochs spent | every trial to the end | saved |\n|---|---|---|---|---|---|---|\n");
    let (mut spent, mut full, mut seconds) = (0, 0, 0.0);
    for g in &record.groups {
        let best = g.best.map(|i| &g.trials[i]);
        let rungs: Vec<String> = g.rungs.iter().map(|r| r.to_string()).collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0}% |\n",
            g.name,
            best.map_or("(searching)".into(), values_text),
            best.and_then(|t| t.best(record.minimize))
                .map_or("–".into(), |v| format!("{v:.4}")),
            rungs.join(", "),
            g.spent_epochs,
            g.full_epochs,
            100.0 * (1.0 - g.spent_epochs as f64 / g.full_epochs.max(1) as f64)
        ));
        (spent, full) = (spent + g.spent_epochs, full + g.full_epochs);
        seconds += g.spent_seconds;
    }
    md.push_str(&format!(
        "\nIn all the trials trained {spent} run-epochs ({:.1} min of run time, summed) where training each of them to the end takes {full}: {} run-epochs saved ({:.0}%).\n\n",
        seconds / 60.0,
        full.saturating_sub(spent),
        100.0 * (1.0 - spent as f64 / full.max(1) as f64)
    ));
    for g in &record.groups {
        md.push_str(&format!("### {}\n\n| trial | run | drawn | epochs | best dev | state |\n|---|---|---|---|---|---|\n", g.name));
        for (i, t) in g.trials.iter().enumerate() {
            let mark = if g.best == Some(i) { " **best**" } else { "" };
            md.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {}{mark} |\n",
                i + 1,
                t.run_id,
                values_text(t),
                t.curve.len(),
                t.best(record.minimize)
                    .map_or("–".into(), |v| format!("{v:.4}")),
                t.state
            ));
        }
        md.push('\n');
        for png in charts.iter().filter(|c| {
            c.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("search_{}_", slug(g)))
            })
        }) {
            let rel = png.strip_prefix(dir).unwrap_or(png);
            md.push_str(&format!("![{}]({})\n\n", rel.display(), rel.display()));
        }
    }
    md
}

/// Where a trial's value of `key` sits in the group's range, 0 to 1 (log scale where drawn so).
fn position(group: &GroupRecord, key: &str, log: bool, trial: &TrialRecord) -> Option<f64> {
    let scale = |v: f64| if log { v.ln() } else { v };
    let values: Vec<f64> = group
        .trials
        .iter()
        .filter_map(|t| t.number(key))
        .map(scale)
        .collect();
    let lo = values.iter().copied().fold(f64::MAX, f64::min);
    let hi = values.iter().copied().fold(f64::MIN, f64::max);
    let v = scale(trial.number(key)?);
    Some(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
}

/// Blue for the low end of a range, red for the high end.
fn ramp(at: f64) -> RGBColor {
    let mix = |a: f64, b: f64| (a + (b - a) * at.clamp(0.0, 1.0)) as u8;
    RGBColor(mix(40.0, 215.0), mix(90.0, 50.0), mix(200.0, 40.0))
}

fn pruned(trial: &TrialRecord) -> bool {
    trial.state.starts_with("pruned")
}

/// The legend of the curves chart: the colour ramp's ends, pruned and best.
fn note_ramp(g: &GroupRecord, key: &str) {
    let range =
        |pick: fn(f64, f64) -> f64| g.trials.iter().filter_map(|t| t.number(key)).reduce(pick);
    if let (Some(lo), Some(hi)) = (range(f64::min), range(f64::max)) {
        note(&format!("{key} = {lo}"), Mark::Line(ramp(0.0)));
        note(&format!("{key} = {hi}"), Mark::Line(ramp(1.0)));
    }
    note(
        "pruned at a rung (faded; grey lines: rungs)",
        Mark::Line(RGBColor(190, 190, 190)),
    );
    note("best (thick)", Mark::Line(RGBColor(60, 60, 60)));
}

/// Every trial's dev curve, coloured by its drawn value of the first searched setting.
struct TrialCurves<'a> {
    group: &'a GroupRecord,
    metric: String,
}

impl Chart for TrialCurves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let g = self.group;
        let (key, log) = g.searched.first().cloned().unwrap_or_default();
        let title = format!(
            "{} {}: every trial's dev curve",
            task_label(&g.task),
            method_label(g.method)
        );
        let y = y_range(
            g.trials
                .iter()
                .flat_map(|t| t.curve.iter().copied())
                .filter(|v| v.is_finite()),
        );
        let y_desc = format!("dev {}", self.metric);
        let mut chart = epoch_plane(root, &title, &y_desc, g.max_epochs as f64, y)?;
        for &rung in &g.rungs[..g.rungs.len() - 1] {
            let line = vec![
                (rung as f64 + 0.5, chart.y_range().start),
                (rung as f64 + 0.5, chart.y_range().end),
            ];
            chart
                .draw_series(LineSeries::new(
                    line,
                    RGBColor(180, 180, 180).stroke_width(1),
                ))
                .map_err(err)?;
        }
        for (i, t) in g.trials.iter().enumerate() {
            let color = ramp(position(g, &key, log, t).unwrap_or(0.5));
            let (alpha, width) = match (g.best == Some(i), pruned(t)) {
                (true, _) => (1.0, 4),
                (false, true) => (0.3, 1),
                (false, false) => (0.85, 2),
            };
            let points: Vec<(f64, f64)> = t
                .curve
                .iter()
                .enumerate()
                .map(|(e, v)| ((e + 1) as f64, *v))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    points.clone(),
                    color.mix(alpha).stroke_width(width),
                ))
                .map_err(err)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.mix(alpha).filled())),
                )
                .map_err(err)?;
        }
        note_ramp(g, &key);
        Ok(())
    }
}

/// Each trial's best dev score against its drawn value of one setting.
struct ScoreBySetting<'a> {
    group: &'a GroupRecord,
    key: String,
    log: bool,
    metric: String,
    minimize: bool,
}

impl Chart for ScoreBySetting<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let g = self.group;
        let points: Vec<(f64, f64, &TrialRecord, usize)> = g
            .trials
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((t.number(&self.key)?, t.best(self.minimize)?, t, i)))
            .collect();
        let title = format!(
            "{} {}: dev score by {}",
            task_label(&g.task),
            method_label(g.method),
            self.key
        );
        let y = y_range(points.iter().map(|p| p.1));
        let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        let y_desc = format!("best dev {} reached", self.metric);
        let dots: Vec<((f64, f64), RGBColor, u32)> = points
            .iter()
            .map(|&(x, v, t, i)| {
                let (color, size) = match (g.best == Some(i), pruned(t)) {
                    (true, _) => (RGBColor(200, 30, 30), 9),
                    (false, true) => (RGBColor(150, 150, 150), 5),
                    (false, false) => (RGBColor(40, 90, 200), 6),
                };
                ((x, v), color, size)
            })
            .collect();
        if self.log {
            let (lo, hi) = (lo / 1.5, hi * 1.5);
            let mut chart = frame(root, &title)
                .build_cartesian_2d((lo..hi).log_scale(), y)
                .map_err(err)?;
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(format!("{} (log scale)", self.key))
                .y_desc(&y_desc)
                .x_label_formatter(&|x| format!("{x:.0e}"));
            draw_mesh(&mut mesh)?;
            draw_dots(&mut chart, &dots)?;
        } else {
            let pad = ((hi - lo) * 0.1).max(0.5);
            let mut chart = frame(root, &title)
                .build_cartesian_2d(lo - pad..hi + pad, y)
                .map_err(err)?;
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(&self.key).y_desc(&y_desc);
            draw_mesh(&mut mesh)?;
            draw_dots(&mut chart, &dots)?;
        }
        note("best trial", Mark::Dot(RGBColor(200, 30, 30)));
        note("trained to the end", Mark::Dot(RGBColor(40, 90, 200)));
        note(
            "pruned at a rung (its best before)",
            Mark::Dot(RGBColor(150, 150, 150)),
        );
        Ok(())
    }
}

fn draw_dots<'a, DB: DrawingBackend + 'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    dots: &[((f64, f64), RGBColor, u32)],
) -> Result<()> {
    let circles = dots
        .iter()
        .map(|&(at, color, size)| Circle::new(at, size, color.filled()));
    chart.draw_series(circles).map_err(err)?;
    Ok(())
}

/// Each group's trial curves and one score chart per numeric searched setting, in `dir`.
pub fn draw_search(record: &SearchRecord, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut charts = vec![];
    for g in record
        .groups
        .iter()
        .filter(|g| g.trials.iter().any(|t| !t.curve.is_empty()))
    {
        let metric = g.metric.clone();
        let curves = TrialCurves {
            group: g,
            metric: metric.clone(),
        };
        charts.push(render(
            &curves,
            &dir.join(format!("search_{}_curves", slug(g))),
        )?);
        for (key, log) in &g.searched {
            if g.trials.iter().all(|t| t.number(key).is_none()) {
                continue;
            }
            let chart = ScoreBySetting {
                group: g,
                key: key.clone(),
                log: *log,
                metric: metric.clone(),
                minimize: record.minimize,
            };
            charts.push(render(
                &chart,
                &dir.join(format!("search_{}_{key}", slug(g))),
            )?);
        }
    }
    Ok(charts)
}
