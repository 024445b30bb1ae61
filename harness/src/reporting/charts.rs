//! Charts of a sweep's summary (plotters, PNG and SVG, DejaVu Sans embedded so they render on
//! headless nodes): per task, score vs prompt length (PT and PT2 lines, FT as a dashed reference),
//! bars of the best FT/PT/PT2, score vs trainable parameters (log axis), and score vs model size
//! when the sweep has several models. Pure functions of the summary rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use ptv2_models::MethodKind;

use crate::records::settings::{Framework, RunSettings};
use crate::reporting::results::SummaryRow;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 560;

fn method_color(method: MethodKind) -> RGBColor {
    let (r, g, b) = method.facts().color;
    RGBColor(r, g, b)
}

/// "FT vs PT vs PT2", of the methods these rows have, in the paper's order.
fn methods_title(rows: &[&SummaryRow]) -> String {
    let names: Vec<&str> = MethodKind::ALL
        .into_iter()
        .filter(|m| rows.iter().any(|r| r.settings.tuning.method == *m))
        .map(|m| m.facts().short)
        .collect();
    names.join(" vs ")
}

pub(super) fn method_label(method: MethodKind) -> &'static str {
    method.facts().label
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Without a registered font, ab_glyph cannot draw any text.
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans font is valid"));
    });
}

/// One chart, drawable on any backend.
pub(super) trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

pub(super) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// Write `stem.png` and `stem.svg`; returns the PNG path.
pub(super) fn render(chart: &impl Chart, stem: &Path) -> Result<PathBuf> {
    register_font();
    let png = stem.with_extension("png");
    {
        let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        LEGEND.with(|legend| legend.borrow_mut().clear());
        chart.draw(&root)?;
        draw_noted_legend(&root)?;
        root.present().map_err(err)?;
    }
    {
        let svg = stem.with_extension("svg");
        let root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        LEGEND.with(|legend| legend.borrow_mut().clear());
        chart.draw(&root)?;
        draw_noted_legend(&root)?;
        root.present().map_err(err)?;
    }
    Ok(png)
}

/// A chart's frame: its title, margins and label areas.
pub(super) fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .margin_right(20 + LEGEND_WIDTH)
        .x_label_area_size(50)
        .y_label_area_size(70);
    builder
}

/// The strip right of the data where the legend goes, so that it never covers a bar or a line.
const LEGEND_WIDTH: u32 = 250;

/// The top of a score axis: the metric's own scale (every ptv2 metric is at most 1: accuracy,
/// F1, Matthews, Pearson, exact match as fractions), past it only if a value is.
fn score_top(highest: f64) -> f64 {
    if highest <= 1.0 {
        1.0
    } else {
        highest * 1.1
    }
}

/// Learning curves' plane: epochs 1..=`epochs` across, the dev metric up, its mesh drawn.
pub(super) fn epoch_plane<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    epochs: f64,
    y: std::ops::Range<f64>,
) -> Result<Plane<'a, DB>> {
    let mut chart = frame(root, title)
        .build_cartesian_2d(0.5..epochs + 0.5, y)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(epochs as usize + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(RGBColor(235, 235, 235))
        .axis_desc_style(("sans-serif", 18));
    draw_mesh(&mut mesh)?;
    Ok(chart)
}

/// Draw a configured mesh with the labels' common style.
pub(super) fn draw_mesh<X, Y, DB>(
    mesh: &mut plotters::chart::MeshStyle<'_, '_, X, Y, DB>,
) -> Result<()>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
    DB: DrawingBackend,
{
    mesh.label_style(("sans-serif", 15)).draw().map_err(err)
}

/// Bar charts' x labels: slot i spans [i, i + 1); its label sits at its middle.
fn slot_labels(labels: &[String]) -> impl Fn(&f64) -> String + '_ {
    move |x| {
        let i = x.floor() as usize;
        if (x - x.floor() - 0.5).abs() < 0.01 && i < labels.len() {
            labels[i].clone()
        } else {
            String::new()
        }
    }
}

/// A method's line with a dot at each point, in the legend as a line.
fn draw_dotted_line<'a, DB: DrawingBackend + 'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
    points: &[(f64, f64)],
    color: impl Color,
    label: &str,
    dot: u32,
) -> Result<()> {
    chart
        .draw_series(LineSeries::new(points.to_vec(), color.stroke_width(2)))
        .map_err(err)?;
    note(label, Mark::Line(rgb(&color)));
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, dot, color.filled())))
        .map_err(err)?;
    Ok(())
}

/// What a legend entry shows beside its label.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mark {
    Line(RGBColor),
    /// Dash and gap lengths in pixels.
    Dashed(RGBColor, i32, i32),
    Bar(RGBColor),
    Dot(RGBColor),
}

thread_local! {
    /// The entries of the chart being drawn, in order, each label once (`note`).
    static LEGEND: std::cell::RefCell<Vec<(String, Mark)>> = const { std::cell::RefCell::new(vec![]) };
}

/// Note a legend entry of the chart being drawn; `render` draws them right of the data.
pub(super) fn note(label: &str, mark: Mark) {
    LEGEND.with(|legend| {
        let mut legend = legend.borrow_mut();
        if !legend.iter().any(|(l, _)| l == label) {
            legend.push((label.to_string(), mark));
        }
    });
}

fn rgb(color: &impl Color) -> RGBColor {
    let (r, g, b) = color.to_backend_color().rgb;
    RGBColor(r, g, b)
}

/// The noted entries in the strip right of the plotting area (`LEGEND_WIDTH`): outside the
/// data, so that no bar or line is hidden. Long labels wrap.
fn draw_noted_legend<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>) -> Result<()> {
    let entries = LEGEND.with(|legend| std::mem::take(&mut *legend.borrow_mut()));
    let x = (WIDTH - LEGEND_WIDTH) as i32;
    let mut y = 70;
    for (label, mark) in entries {
        let at = (x, y + 8);
        match mark {
            Mark::Line(c) => root.draw(&PathElement::new(
                vec![at, (x + 22, y + 8)],
                c.stroke_width(2),
            )),
            Mark::Dashed(c, dash, gap) => root
                .draw(&PathElement::new(
                    vec![at, (x + dash, y + 8)],
                    c.stroke_width(2),
                ))
                .and_then(|_| {
                    root.draw(&PathElement::new(
                        vec![(x + dash + gap, y + 8), (x + 2 * dash + gap, y + 8)],
                        c.stroke_width(2),
                    ))
                }),
            Mark::Bar(c) => root.draw(&Rectangle::new([(x, y + 2), (x + 16, y + 14)], c.filled())),
            Mark::Dot(c) => root.draw(&Circle::new((x + 8, y + 8), 6, c.filled())),
        }
        .map_err(err)?;
        for line in wrap(&label, 28) {
            root.draw(&Text::new(line, (x + 30, y), ("sans-serif", 15)))
                .map_err(err)?;
            y += 18;
        }
        y += 6;
    }
    Ok(())
}

/// Words into lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![];
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// The best configuration (highest mean over seeds) among the rows that `keep` admits.
fn best_of<'a>(
    rows: &[&'a SummaryRow],
    keep: impl Fn(&SummaryRow) -> bool,
) -> Option<&'a SummaryRow> {
    rows.iter()
        .copied()
        .filter(|r| keep(r))
        .max_by(|a, b| a.mean.total_cmp(&b.mean))
}

/// The majority-class level of a task's rows, where the runs recorded one.
fn majority_of(rows: &[&SummaryRow]) -> Option<f64> {
    rows.iter().find_map(|r| r.majority)
}

const MAJORITY_LABEL: &str = "majority class";
/// Amber: apart from the methods' colours, and visible on their bars.
const MAJORITY_COLOR: RGBColor = RGBColor(200, 130, 0);

/// The majority-class level as a grey dashed line across `x` (with a legend entry).
fn draw_majority<'a, DB: DrawingBackend + 'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    x: (f64, f64),
    level: Option<f64>,
) -> Result<()> {
    let Some(level) = level else { return Ok(()) };
    let grey = MAJORITY_COLOR;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(x.0, level), (x.1, level)],
            4,
            4,
            grey.stroke_width(2),
        ))
        .map_err(err)?;
    note(MAJORITY_LABEL, Mark::Dashed(rgb(&grey), 4, 4));
    Ok(())
}

/// The best mean per (method, x) of a task, with x from `x_of`.
fn best_by<F: Fn(&SummaryRow) -> f64>(
    rows: &[&SummaryRow],
    x_of: F,
) -> BTreeMap<MethodKind, Vec<(f64, f64)>> {
    let mut best: BTreeMap<(MethodKind, u64), f64> = BTreeMap::new();
    for r in rows {
        let x = x_of(r);
        let e = best
            .entry((r.settings.tuning.method, x.to_bits()))
            .or_insert(f64::MIN);
        *e = e.max(r.mean);
    }
    let mut lines: BTreeMap<MethodKind, Vec<(f64, f64)>> = BTreeMap::new();
    for ((method, x), y) in best {
        lines
            .entry(method)
            .or_default()
            .push((f64::from_bits(x), y));
    }
    for points in lines.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    lines
}

/// The data's range, padded, with a free band on top where the legend goes.
pub(super) fn y_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let v: Vec<f64> = values.collect();
    let lo = v.iter().copied().fold(f64::MAX, f64::min);
    let hi = v.iter().copied().fold(f64::MIN, f64::max);
    let pad = ((hi - lo) * 0.15).max(0.02);
    let top = hi + pad;
    let top = if hi <= 1.0 { top.min(1.0) } else { top };
    (lo - pad).max(0.0).min(lo)..top
}

struct PromptLength<'a> {
    title: String,
    metric: String,
    rows: Vec<&'a SummaryRow>,
}

impl Chart for PromptLength<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let prompted: Vec<&SummaryRow> = self
            .rows
            .iter()
            .copied()
            .filter(|r| r.settings.tuning.method.has_prompts())
            .collect();
        let lines = best_by(&prompted, |r| r.settings.tuning.prompt_len as f64);
        let ft = self
            .rows
            .iter()
            .filter(|r| r.settings.tuning.method == MethodKind::Ft)
            .map(|r| r.mean)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
        let xs: Vec<f64> = lines.values().flatten().map(|p| p.0).collect();
        let (x_lo, x_hi) = (
            xs.iter().copied().fold(f64::MAX, f64::min).min(1.0),
            xs.iter().copied().fold(1.0, f64::max),
        );
        let majority = majority_of(&self.rows);
        let y = y_range(
            lines
                .values()
                .flatten()
                .map(|p| p.1)
                .chain(ft)
                .chain(majority),
        );
        let mut chart = frame(root, &self.title)
            .build_cartesian_2d((x_lo * 0.8..x_hi * 1.25).log_scale(), y)
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc("prompt length P (log scale)")
            .y_desc(format!("dev {}", self.metric))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_max_light_lines(1)
            .light_line_style(RGBColor(235, 235, 235))
            .axis_desc_style(("sans-serif", 18));
        draw_mesh(&mut mesh)?;
        draw_majority(&mut chart, (x_lo * 0.8, x_hi * 1.25), majority)?;
        if let Some(ft) = ft {
            let color = method_color(MethodKind::Ft);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x_lo * 0.8, ft), (x_hi * 1.25, ft)],
                    10,
                    6,
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            note(method_label(MethodKind::Ft), Mark::Dashed(color, 10, 6));
        }
        for (&method, points) in &lines {
            let color = method_color(method);
            draw_dotted_line(&mut chart, points, color, method_label(method), 5)?;
        }
        Ok(())
    }
}

struct MethodBars<'a> {
    title: String,
    metric: String,
    rows: Vec<&'a SummaryRow>,
}

impl Chart for MethodBars<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let methods = methods_in(&self.rows);
        // The best configuration of each method, with its std over seeds.
        let best: Vec<(MethodKind, &SummaryRow)> = methods
            .iter()
            .map(|m| {
                let r = best_of(&self.rows, |r| r.settings.tuning.method == *m)
                    .expect("method present");
                (*m, r)
            })
            .collect();
        let majority = majority_of(&self.rows);
        let top = best
            .iter()
            .map(|(_, r)| r.mean + r.std)
            .chain(majority)
            .fold(0.0, f64::max);
        let mut chart = frame(root, &self.title)
            .build_cartesian_2d(0.0..methods.len() as f64, 0.0..score_top(top))
            .map_err(err)?;
        // Short names under the bars; the legend beside them spells each out.
        let names: Vec<String> = methods.iter().map(|m| m.facts().short.into()).collect();
        let label_at = slot_labels(&names);
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .x_labels(methods.len() * 2 + 1)
            .x_label_formatter(&label_at)
            .y_desc(format!("best dev {} (mean over seeds ± std)", self.metric))
            .axis_desc_style(("sans-serif", 18));
        draw_mesh(&mut mesh)?;
        for (i, &(method, row)) in best.iter().enumerate() {
            draw_bars(&mut chart, method, &[(i as f64 + 0.2, row)], 0.6, top)?;
        }
        if majority.is_some() {
            draw_majority(&mut chart, (0.0, methods.len() as f64), majority)?;
        }
        Ok(())
    }
}

/// Every task side by side, as the paper's tables: grouped bars (task × method, each method's
/// best configuration, mean ± std over seeds) with each task's majority-class level.
struct Overview<'a> {
    title: String,
    rows: Vec<&'a SummaryRow>,
}

impl Chart for Overview<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let tasks: Vec<&str> = self
            .rows
            .iter()
            .map(|r| r.settings.task.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let methods = methods_in(&self.rows);
        let best = |task: &str, method: MethodKind| {
            best_of(&self.rows, |r| {
                r.settings.task == task && r.settings.tuning.method == method
            })
        };
        let top = self
            .rows
            .iter()
            .map(|r| r.mean + r.std)
            .chain(self.rows.iter().filter_map(|r| r.majority))
            .fold(0.0, f64::max);
        let labels: Vec<String> = tasks.iter().map(|t| self.task_label(t)).collect();
        let mut chart = frame(root, &self.title)
            .build_cartesian_2d(0.0..tasks.len() as f64, 0.0..score_top(top))
            .map_err(err)?;
        let label_at = slot_labels(&labels);
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .x_labels(tasks.len() * 2 + 1)
            .x_label_formatter(&label_at)
            .y_desc("best dev score, mean over seeds ± std (each task's main metric)")
            .axis_desc_style(("sans-serif", 16));
        draw_mesh(&mut mesh)?;
        let width = 0.8 / methods.len().max(1) as f64;
        for (m, &method) in methods.iter().enumerate() {
            let bars: Vec<(f64, &SummaryRow)> = tasks
                .iter()
                .enumerate()
                .filter_map(|(t, task)| {
                    Some((t as f64 + 0.1 + m as f64 * width, best(task, method)?))
                })
                .collect();
            draw_bars(&mut chart, method, &bars, width, top)?;
        }
        self.draw_majorities(&mut chart, &tasks)?;
        Ok(())
    }
}

/// The methods that have rows, in the registry's order.
fn methods_in(rows: &[&SummaryRow]) -> Vec<MethodKind> {
    MethodKind::ALL
        .into_iter()
        .filter(|m| rows.iter().any(|r| r.settings.tuning.method == *m))
        .collect()
}

impl Overview<'_> {
    /// `task (its main metric)`, an x-axis label.
    fn task_label(&self, task: &str) -> String {
        let metric = self
            .rows
            .iter()
            .find(|r| r.settings.task == task)
            .map_or("", |r| r.metric.as_str());
        format!("{task} ({metric})")
    }
}

pub(super) type Plane<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A method's bars at (x, its row): mean, ± std whisker, the mean written above.
fn draw_bars<DB: DrawingBackend>(
    chart: &mut Plane<'_, DB>,
    method: MethodKind,
    bars: &[(f64, &SummaryRow)],
    width: f64,
    top: f64,
) -> Result<()> {
    let series = (method_color(method), method_label(method));
    draw_series_bars(chart, series, bars, width, top)
}

/// Bars of one series (colour, legend label) at (x, its row): mean, ± std whisker, the mean above.
fn draw_series_bars<DB: DrawingBackend>(
    chart: &mut Plane<'_, DB>,
    (color, label): (RGBColor, &str),
    bars: &[(f64, &SummaryRow)],
    width: f64,
    top: f64,
) -> Result<()> {
    chart
        .draw_series(bars.iter().map(|(x, r)| {
            Rectangle::new(
                [(*x + 0.01, 0.0), (*x + width - 0.01, r.mean)],
                color.mix(0.85).filled(),
            )
        }))
        .map_err(err)?;
    note(label, Mark::Bar(rgb(&color)));
    chart
        .draw_series(bars.iter().map(|(x, r)| {
            PathElement::new(
                vec![
                    (x + width / 2.0, r.mean - r.std),
                    (x + width / 2.0, r.mean + r.std),
                ],
                BLACK.stroke_width(2),
            )
        }))
        .map_err(err)?;
    chart
        .draw_series(bars.iter().map(|(x, r)| {
            Text::new(
                format!("{:.3}", r.mean),
                (x + width * 0.12, r.mean + r.std + top * 0.04),
                ("sans-serif", 14),
            )
        }))
        .map_err(err)?;
    Ok(())
}

impl Overview<'_> {
    /// Each task's majority-class level, dashed across its group of bars.
    fn draw_majorities<DB: DrawingBackend>(
        &self,
        chart: &mut Plane<'_, DB>,
        tasks: &[&str],
    ) -> Result<()> {
        let grey = MAJORITY_COLOR;
        for (t, task) in tasks.iter().enumerate() {
            let task_rows: Vec<&SummaryRow> = self
                .rows
                .iter()
                .filter(|r| r.settings.task == *task)
                .copied()
                .collect();
            let Some(level) = majority_of(&task_rows) else {
                continue;
            };
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(t as f64 + 0.05, level), (t as f64 + 0.95, level)],
                    4,
                    4,
                    grey.stroke_width(2),
                ))
                .map_err(err)?;
            note(MAJORITY_LABEL, Mark::Dashed(grey, 4, 4));
        }
        Ok(())
    }
}

/// Learning curves: every configuration's main dev score per epoch (mean over seeds), each
/// method's best in full colour and its other configurations pale, with the majority-class level.
struct Curves<'a> {
    title: String,
    metric: String,
    rows: Vec<&'a SummaryRow>,
}

impl Chart for Curves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let best: Vec<&SummaryRow> = MethodKind::ALL
            .into_iter()
            .filter_map(|m| {
                best_of(&self.rows, |r| {
                    r.settings.tuning.method == m && !r.curve.is_empty()
                })
            })
            .collect();
        let others: Vec<&SummaryRow> = self
            .rows
            .iter()
            .filter(|r| !r.curve.is_empty() && !best.iter().any(|b| std::ptr::eq(*b, **r)))
            .copied()
            .collect();
        let epochs = best.iter().map(|r| r.curve.len()).max().unwrap_or(1) as f64;
        let majority = majority_of(&self.rows);
        let y = y_range(
            best.iter()
                .flat_map(|r| r.curve.iter().copied())
                .chain(majority),
        );
        let y_desc = format!("dev {} (mean over seeds)", self.metric);
        let mut chart = epoch_plane(root, &self.title, &y_desc, epochs, y)?;
        draw_majority(&mut chart, (0.5, epochs + 0.5), majority)?;
        let pale = others.iter().map(|r| (*r, true));
        for (r, is_pale) in pale.chain(best.iter().map(|r| (*r, false))) {
            let color = if is_pale {
                method_color(r.settings.tuning.method).mix(0.4)
            } else {
                method_color(r.settings.tuning.method).mix(1.0)
            };
            let label = if r.settings.tuning.method == MethodKind::Ft || others.is_empty() {
                method_label(r.settings.tuning.method).to_string()
            } else {
                let precision = match r.settings.precision {
                    ptv2_models::Precision::F32 => String::new(),
                    half => format!(", {half} backbone"),
                };
                format!(
                    "{}, init {}, lr {}{precision}",
                    method_label(r.settings.tuning.method),
                    r.settings.init(),
                    r.settings.lr
                )
            };
            let points: Vec<(f64, f64)> = r
                .curve
                .iter()
                .enumerate()
                .map(|(i, v)| ((i + 1) as f64, *v))
                .collect();
            draw_dotted_line(&mut chart, &points, color, &label, 4)?;
        }
        Ok(())
    }
}

struct Scatter<'a> {
    title: String,
    x_desc: String,
    metric: String,
    rows: Vec<&'a SummaryRow>,
    x_of: fn(&SummaryRow) -> f64,
    x_label: fn(&f64) -> String,
    lines: bool,
}

impl Chart for Scatter<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let groups = if self.lines {
            best_by(&self.rows, self.x_of)
        } else {
            let mut g: BTreeMap<MethodKind, Vec<(f64, f64)>> = BTreeMap::new();
            for r in &self.rows {
                g.entry(r.settings.tuning.method)
                    .or_default()
                    .push(((self.x_of)(r), r.mean));
            }
            g
        };
        let xs: Vec<f64> = groups.values().flatten().map(|p| p.0).collect();
        let (lo, hi) = (
            xs.iter().copied().fold(f64::MAX, f64::min).max(1.0),
            xs.iter().copied().fold(1.0, f64::max),
        );
        // From a power of ten, so that a range within one decade still gets labelled ticks.
        let (lo, hi) = (10f64.powf((lo / 2.0).log10().floor()), hi * 2.0);
        let majority = majority_of(&self.rows);
        let y = y_range(groups.values().flatten().map(|p| p.1).chain(majority));
        let mut chart = frame(root, &self.title)
            .build_cartesian_2d((lo..hi).log_scale(), y)
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&self.x_desc)
            .y_desc(format!("dev {} (mean over seeds)", self.metric))
            .x_label_formatter(&self.x_label)
            .x_max_light_lines(1)
            .light_line_style(RGBColor(235, 235, 235))
            .axis_desc_style(("sans-serif", 18));
        draw_mesh(&mut mesh)?;
        draw_majority(&mut chart, (lo, hi), majority)?;
        for (&method, points) in &groups {
            let color = method_color(method);
            if self.lines {
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(err)?;
            }
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 6, color.filled())))
                .map_err(err)?;
            note(method_label(method), Mark::Dot(color));
        }
        if !self.lines {
            chart
                .draw_series(self.point_names().into_iter().map(|(p, name, line)| {
                    let above = -18 - 16 * line as i32;
                    EmptyElement::at(p) + Text::new(name, (9, above), ("sans-serif", 14))
                }))
                .map_err(err)?;
        }
        Ok(())
    }
}

impl Scatter<'_> {
    /// Beside each point of a method with a few configurations (2–4; more would cover the chart),
    /// what tells it from the others (e.g. `precision bf16`, `precision f32`): one colour per
    /// method cannot. With the line it goes on: points that coincide stack their names.
    fn point_names(&self) -> Vec<((f64, f64), String, usize)> {
        let of_method = |method: MethodKind| -> Vec<&SummaryRow> {
            self.rows
                .iter()
                .copied()
                .filter(|r| r.settings.tuning.method == method)
                .collect()
        };
        let mut named: Vec<((f64, f64), String, usize)> = vec![];
        for r in &self.rows {
            let siblings = of_method(r.settings.tuning.method);
            if !(2..=4).contains(&siblings.len()) {
                continue;
            }
            let point = ((self.x_of)(r), r.mean);
            let coinciding = named
                .iter()
                .filter(|(p, _, _)| p.0 == point.0 && (p.1 - point.1).abs() < 0.005)
                .count();
            named.push((point, settings_that_differ(r, &siblings, true), coinciding));
        }
        named
    }
}

/// The file name suffix of a model's charts when a sweep has several models.
fn model_suffix(model: &str, models: usize) -> String {
    if models > 1 {
        format!("_{}", model.replace(['/', '@'], "-"))
    } else {
        String::new()
    }
}

/// A model as chart titles name it: an embedded name as it is, a dir by its last part.
fn model_name(model: &str) -> &str {
    model
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(model)
}

/// A task as chart titles and file names show it: a task read by path by its name alone
/// (`sst2:TRAIN,DEV` and `parquet:sst2:TRAIN,DEV` → `sst2`).
pub(super) fn task_label(task: &str) -> &str {
    let task = task.strip_prefix("parquet:").unwrap_or(task);
    task.split(':').next().unwrap_or(task)
}

/// Draw every chart a summary supports into `dir`; returns the PNG paths.
pub fn draw_all(all: &[SummaryRow], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = framework_charts(all, dir)?;
    // The method charts are ptv2's own runs; PyTorch replays have their chart above.
    let summary: Vec<&SummaryRow> = all
        .iter()
        .filter(|r| r.settings.framework == Framework::Ptv2)
        .collect();
    let tasks: std::collections::BTreeSet<&str> =
        summary.iter().map(|r| r.settings.task.as_str()).collect();
    let models: std::collections::BTreeSet<&str> =
        summary.iter().map(|r| r.settings.model.as_str()).collect();
    for model in &models {
        let rows: Vec<&SummaryRow> = summary
            .iter()
            .copied()
            .filter(|r| r.settings.model == *model)
            .collect();
        let chart = Overview {
            title: format!(
                "Every task: {} ({})",
                methods_title(&rows),
                model_name(model)
            ),
            rows,
        };
        let suffix = model_suffix(model, models.len());
        written.push(render(&chart, &dir.join(format!("overview{suffix}")))?);
    }
    for full_task in &tasks {
        let task_rows: Vec<&SummaryRow> = summary
            .iter()
            .copied()
            .filter(|r| r.settings.task == *full_task)
            .collect();
        let task = task_label(full_task);
        // Prompt length, curves and bars per model, so models are not mixed in one line.
        for model in &models {
            let rows: Vec<&SummaryRow> = task_rows
                .iter()
                .copied()
                .filter(|r| r.settings.model == *model)
                .collect();
            if !rows.is_empty() {
                let stem = |kind: &str| {
                    dir.join(format!(
                        "{task}_{kind}{}",
                        model_suffix(model, models.len())
                    ))
                };
                written.extend(task_charts(task, model_name(model), rows, &stem)?);
            }
        }
        written.extend(scatter_charts(task, task_rows, models.len() > 1, dir)?);
    }
    Ok(written)
}

/// One task on one model: score vs prompt length (with two lengths or more), learning curves,
/// the methods' bars.
fn task_charts(
    task: &str,
    model: &str,
    rows: Vec<&SummaryRow>,
    stem: &dyn Fn(&str) -> PathBuf,
) -> Result<Vec<PathBuf>> {
    let mut written = vec![];
    let metric = rows[0].metric.clone();
    let prompt_lens: std::collections::BTreeSet<usize> = rows
        .iter()
        .filter(|r| r.settings.tuning.method.has_prompts())
        .map(|r| r.settings.tuning.prompt_len)
        .collect();
    if prompt_lens.len() > 1 {
        let chart = PromptLength {
            title: format!("{task}: score vs prompt length ({model})"),
            metric: metric.clone(),
            rows: rows.clone(),
        };
        written.push(render(&chart, &stem("prompt_len"))?);
    }
    if rows.iter().any(|r| !r.curve.is_empty()) {
        let chart = Curves {
            title: format!("{task}: learning curves ({model})"),
            metric: metric.clone(),
            rows: rows.clone(),
        };
        written.push(render(&chart, &stem("curves"))?);
    }
    let chart = MethodBars {
        title: format!("{task}: {} ({model})", methods_title(&rows)),
        metric,
        rows,
    };
    written.push(render(&chart, &stem("methods"))?);
    Ok(written)
}

/// One task, every model: score vs trainable parameters, vs wall time, and vs model size when
/// there are several models.
fn scatter_charts(
    task: &str,
    rows: Vec<&SummaryRow>,
    several_models: bool,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let metric = rows[0].metric.clone();
    let scatter = |title: &str, x_desc: &str, x_of: fn(&SummaryRow) -> f64, lines: bool| Scatter {
        title: format!("{task}: {title}"),
        x_desc: x_desc.into(),
        metric: metric.clone(),
        rows: rows.clone(),
        x_of,
        x_label: |x| format!("{x:.0e}"),
        lines,
    };
    let mut written = vec![];
    let by_params = scatter(
        "score vs trainable parameters",
        "trainable parameters (log scale)",
        |r| r.trainable_params as f64,
        false,
    );
    written.push(render(&by_params, &dir.join(format!("{task}_trainable")))?);
    let by_time = Scatter {
        x_label: |x| format!("{x:.0}"),
        ..scatter(
            "score vs wall time of a run",
            "wall seconds per run (log scale)",
            |r| r.wall_seconds,
            false,
        )
    };
    written.push(render(&by_time, &dir.join(format!("{task}_wall_time")))?);
    if several_models {
        let by_size = scatter(
            "score vs model size",
            "model parameters (log scale)",
            |r| r.total_params as f64,
            true,
        );
        written.push(render(&by_size, &dir.join(format!("{task}_model_size")))?);
    }
    Ok(written)
}

/// One task's configurations trained by ptv2, replayed in PyTorch + PEFT and trained by PEFT's
/// own loop, side by side: each configuration (named by the settings that differ between the
/// task's rows) a group of bars, one per framework it ran in, mean ± std over seeds, with the
/// majority-class level.
struct FrameworkBars<'a> {
    title: String,
    metric: String,
    sets: Vec<FrameworkSet<'a>>,
}

/// A framework's bar colour: ptv2 in PT2's colour, the replay grey, PEFT's own loop a light
/// grey-blue.
fn framework_color(framework: Framework) -> RGBColor {
    match framework {
        Framework::Ptv2 => method_color(MethodKind::Pt2),
        Framework::Pytorch => RGBColor(120, 120, 120),
        Framework::PeftNative => RGBColor(120, 160, 200),
    }
}

impl<'a> Chart for FrameworkBars<'a> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let rows = || self.sets.iter().flat_map(|set| set.by).flatten();
        let majority = rows().find_map(|r| r.majority);
        let top = rows()
            .map(|r| r.mean + r.std)
            .chain(majority)
            .fold(0.0, f64::max);
        let slots = self.sets.len() as f64;
        let mut chart = frame(root, &self.title)
            .build_cartesian_2d(0.0..slots, 0.0..score_top(top))
            .map_err(err)?;
        let names: Vec<String> = self.sets.iter().map(|set| set.label.clone()).collect();
        let label_at = slot_labels(&names);
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .x_labels(self.sets.len() * 2 + 1)
            .x_label_formatter(&label_at)
            .y_desc(format!("best dev {} (mean over seeds ± std)", self.metric))
            .axis_desc_style(("sans-serif", 18));
        draw_mesh(&mut mesh)?;
        let present: Vec<usize> = (0..Framework::ALL.len())
            .filter(|&f| self.sets.iter().any(|set| set.by[f].is_some()))
            .collect();
        let width = 0.8 / present.len() as f64;
        for (place, &f) in present.iter().enumerate() {
            let bars: Vec<(f64, &SummaryRow)> = self
                .sets
                .iter()
                .enumerate()
                .filter_map(|(i, set)| Some((i as f64 + 0.1 + place as f64 * width, set.by[f]?)))
                .collect();
            let framework = Framework::ALL[f];
            let series = (framework_color(framework), framework.label());
            draw_series_bars(&mut chart, series, &bars, width, top)?;
        }
        draw_majority(&mut chart, (0.0, slots), majority)?;
        Ok(())
    }
}

/// The same configurations as `FrameworkBars`, epoch by epoch: each configuration one colour,
/// ptv2's learning curve solid with dots, the replay's dashed, PEFT's own loop's dotted (mean
/// over seeds).
struct FrameworkCurves<'a> {
    title: String,
    metric: String,
    sets: Vec<FrameworkSet<'a>>,
}

const CONFIGURATION_COLORS: [RGBColor; 4] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

impl Chart for FrameworkCurves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let rows = || self.sets.iter().flat_map(|set| set.by).flatten();
        let epochs = rows().map(|r| r.curve.len()).max().unwrap_or(1) as f64;
        let y = y_range(rows().flat_map(|r| r.curve.iter().copied()));
        let y_desc = format!("dev {} (mean over seeds)", self.metric);
        let mut chart = epoch_plane(root, &self.title, &y_desc, epochs, y)?;
        let points = |r: &SummaryRow| -> Vec<(f64, f64)> {
            (1..).map(f64::from).zip(r.curve.iter().copied()).collect()
        };
        for (i, set) in self.sets.iter().enumerate() {
            let color = CONFIGURATION_COLORS[i % CONFIGURATION_COLORS.len()];
            let label = |f: usize| format!("{}, {}", Framework::ALL[f].label(), set.label);
            if let Some(r) = set.by[0] {
                draw_dotted_line(&mut chart, &points(r), color, &label(0), 3)?;
            }
            // The replay in long dashes, PEFT's own loop in short ones.
            for (f, (dash, gap)) in [(1, (6, 4)), (2, (2, 3))] {
                let Some(r) = set.by[f] else { continue };
                let style = color.stroke_width(2);
                chart
                    .draw_series(DashedLineSeries::new(points(r), dash, gap, style))
                    .map_err(err)?;
                note(&label(f), Mark::Dashed(rgb(&color), dash, gap));
            }
        }
        Ok(())
    }
}

/// The settings that differ between `rows` (but the framework) and are not at their default in
/// this row, as `key value`; "defaults" when there are none.
pub fn varying_settings(row: &SummaryRow, rows: &[&SummaryRow]) -> String {
    settings_that_differ(row, rows, false)
}

/// The settings that differ between `rows` (but the framework), as `key value` in `row`; those at
/// their flag's default too when `with_defaults`, else "defaults" when nothing else is left.
fn settings_that_differ(row: &SummaryRow, rows: &[&SummaryRow], with_defaults: bool) -> String {
    // Settings config.json leaves out mean their stored default (`fill_omitted`: a run without
    // `batching` is a grouped one), which is not always the flag's default today.
    let filled = |r: &SummaryRow| {
        let mut fields = r.configuration.clone();
        RunSettings::fill_omitted(&mut fields);
        fields
    };
    let all: Vec<serde_json::Map<String, serde_json::Value>> =
        rows.iter().map(|r| filled(r)).collect();
    let mine = filled(row);
    let value = |fields: &serde_json::Map<String, serde_json::Value>, key: &str| {
        fields.get(key).and_then(RunSettings::value_text)
    };
    let keys: std::collections::BTreeSet<&String> = all
        .iter()
        .flat_map(|f| f.keys())
        .filter(|k| *k != "framework")
        .collect();
    let shown: Vec<String> = keys
        .into_iter()
        .filter(|k| all.iter().any(|f| value(f, k) != value(&mine, k)))
        .filter_map(|k| {
            let text = value(&mine, k)?;
            (with_defaults || !RunSettings::is_flag_default(k, &text))
                .then(|| format!("{k} {text}"))
        })
        .collect();
    if shown.is_empty() {
        "defaults".into()
    } else {
        shown.join(", ")
    }
}

/// One configuration of a task in every framework it ran in.
#[derive(Clone)]
pub struct FrameworkSet<'a> {
    /// The settings that tell it from the task's other configurations (`varying_settings`).
    pub label: String,
    /// Its summary row in each framework, in `Framework::ALL`'s order.
    pub by: [Option<&'a SummaryRow>; 3],
}

/// The task's rows by configuration, in the order the configurations first appear (the
/// defaults first).
pub fn framework_sets<'a>(
    rows: &[&'a SummaryRow],
    label_of: fn(&SummaryRow, &[&SummaryRow]) -> String,
) -> Vec<FrameworkSet<'a>> {
    let mut sets: Vec<FrameworkSet<'a>> = vec![];
    for r in rows {
        let label = label_of(r, rows);
        let i = match sets.iter().position(|set| set.label == label) {
            Some(i) => i,
            None => {
                sets.push(FrameworkSet {
                    label,
                    by: [None; 3],
                });
                sets.len() - 1
            }
        };
        let f = Framework::ALL
            .iter()
            .position(|&f| f == r.settings.framework)
            .expect("every framework is in ALL");
        sets[i].by[f] = Some(r);
    }
    sets.sort_by_key(|set| set.label != "defaults");
    sets
}

/// The tasks that ran in another framework beside ptv2.
pub fn tasks_with_other_frameworks(summary: &[SummaryRow]) -> BTreeSet<&str> {
    summary
        .iter()
        .filter(|r| r.settings.framework != Framework::Ptv2)
        .map(|r| r.settings.task.as_str())
        .collect()
}

/// `{task}_frameworks` and `{task}_framework_curves` for every task that ran in another
/// framework beside ptv2.
fn framework_charts(summary: &[SummaryRow], dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![];
    for full_task in tasks_with_other_frameworks(summary) {
        let rows: Vec<&SummaryRow> = summary
            .iter()
            .filter(|r| r.settings.task == full_task)
            .collect();
        let task = task_label(full_task);
        let (metric, sets) = (
            rows[0].metric.clone(),
            framework_sets(&rows, varying_settings),
        );
        // Only where runs recorded per-epoch curves (an empty range would not draw).
        if rows.iter().any(|r| !r.curve.is_empty()) {
            let curves = FrameworkCurves {
                title: format!("{task}: learning curves by framework (mean over seeds)"),
                metric: metric.clone(),
                sets: sets.clone(),
            };
            let file = dir.join(format!("{task}_framework_curves"));
            written.push(render(&curves, &file)?);
        }
        let bars = FrameworkBars {
            title: format!("{task}: ptv2 beside PyTorch + PEFT"),
            metric,
            sets,
        };
        written.push(render(&bars, &dir.join(format!("{task}_frameworks")))?);
    }
    Ok(written)
}

/// One configuration of `ptv2 bench`: ours against PyTorch as time ratios (below 1: we are faster).
pub struct RatioBar {
    pub label: String,
    /// Our train step time / PyTorch's.
    pub train: f64,
    /// Our eval time per batch / PyTorch's (PyTorch's throughput / ours).
    pub eval: f64,
}

struct BenchRatios<'a> {
    bars: &'a [RatioBar],
}

impl Chart for BenchRatios<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let top = self
            .bars
            .iter()
            .flat_map(|b| [b.train, b.eval])
            .fold(1.0, f64::max);
        let slots = self.bars.len() as f64;
        let mut chart = frame(root, "ptv2 time / PyTorch time (below 1: ptv2 is faster)")
            .build_cartesian_2d(0.0..slots, 0.0..top * 1.25)
            .map_err(err)?;
        let names: Vec<String> = self.bars.iter().map(|b| b.label.clone()).collect();
        let label_at = slot_labels(&names);
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .x_labels(self.bars.len() * 2 + 1)
            .x_label_formatter(&label_at)
            .x_desc("method, sequence length, our backbone's precision if not f32 (batch 16, MiniLM-L6)")
            .y_desc("time ratio, ours / PyTorch")
            .axis_desc_style(("sans-serif", 18));
        draw_mesh(&mut mesh)?;
        let train: fn(&RatioBar) -> f64 = |b| b.train;
        let eval: fn(&RatioBar) -> f64 = |b| b.eval;
        let series = [
            ("train step", method_color(MethodKind::Pt2), 0.1, train),
            ("eval batch", method_color(MethodKind::Pt), 0.5, eval),
        ];
        for (label, color, offset, value) in series {
            let at = |(i, b): (usize, &RatioBar)| (i as f64 + offset, value(b));
            let points: Vec<(f64, f64)> = self.bars.iter().enumerate().map(at).collect();
            chart
                .draw_series(points.iter().map(|&(x, y)| {
                    Rectangle::new([(x + 0.01, 0.0), (x + 0.39, y)], color.mix(0.85).filled())
                }))
                .map_err(err)?;
            note(label, Mark::Bar(rgb(&color)));
            chart
                .draw_series(points.iter().map(|&(x, y)| {
                    Text::new(
                        format!("{y:.2}"),
                        (x + 0.06, y + top * 0.05),
                        ("sans-serif", 14),
                    )
                }))
                .map_err(err)?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 1.0), (slots, 1.0)],
                6,
                4,
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
        note("PyTorch (= 1)", Mark::Dashed(BLACK, 6, 4));
        Ok(())
    }
}

/// `ptv2 bench`'s chart: `stem.png` and `stem.svg`; returns the PNG path.
pub fn draw_bench(bars: &[RatioBar], stem: &Path) -> Result<PathBuf> {
    render(&BenchRatios { bars }, stem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporting::results::{summarize, tests_support::row};

    /// A method in several configurations gets each point named by what differs, and points that
    /// coincide stack their names; a method in one configuration gets no names (its colour says
    /// it all).
    #[test]
    fn scatter_points_of_a_method_with_several_configurations_are_named() {
        let rows = [
            row("sst2", "pt2", 8, 1, 0.7),
            row("sst2", "pt2", 16, 1, 0.8),
            row("sst2", "pt2", 32, 1, 0.8),
            row("sst2", "ft", 0, 1, 0.9),
        ];
        let summary = summarize(&rows);
        let scatter = Scatter {
            title: String::new(),
            x_desc: String::new(),
            metric: "accuracy".into(),
            rows: summary.iter().collect(),
            x_of: |r| r.wall_seconds,
            x_label: |x| format!("{x}"),
            lines: false,
        };
        let mut named = scatter.point_names();
        named.sort_by(|a, b| a.1.cmp(&b.1));
        let names: Vec<&str> = named.iter().map(|(_, name, _)| name.as_str()).collect();
        assert_eq!(names, ["prompt_len 16", "prompt_len 32", "prompt_len 8"]);
        // Every row ran 1 s: the two 0.8s share a point, one name above the other.
        let lines: Vec<usize> = named.iter().map(|(_, _, line)| *line).collect();
        assert_eq!(lines.iter().sum::<usize>(), 1);
        assert_eq!(named[2].2, 0, "0.7 is a point of its own");
    }
}
