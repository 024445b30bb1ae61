//! `report.html` beside report.md: the same report as one self-contained page (no network, no
//! CDN), the charts inline as SVG, every table sortable by a click on its header, and each run's
//! learning curve drawn in a last table. Made from report.md, so the two say the same.

use std::path::Path;

use anyhow::Result;

use super::results::RunRecord;

const STYLE: &str = "
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1180px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; }
th { background: #f2f2f2; cursor: pointer; user-select: none; }
th[data-order=asc]::after { content: ' ▲'; } th[data-order=desc]::after { content: ' ▼'; }
tr:nth-child(even) td { background: #fafafa; }
figure.chart { margin: 1.5em 0; } figure.chart svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
svg.curve polyline { fill: none; stroke: #1f77b4; stroke-width: 1.5; }
";

/// Sort a table by the clicked column (numbers by value, `0.81 ± 0.01` by its first number);
/// record on the page how many charts have a size, for the browser test.
const SCRIPT: &str = "
window.addEventListener('error', () => {
  document.body.dataset.errors = (+(document.body.dataset.errors || 0)) + 1;
});
function cellValue(row, i) {
  const text = row.cells[i] ? row.cells[i].textContent.trim() : '';
  const number = parseFloat(text.replace(/[−–]/g, '-'));
  return isNaN(number) ? text.toLowerCase() : number;
}
document.querySelectorAll('table').forEach(table => {
  table.querySelectorAll('th').forEach((th, i) => th.addEventListener('click', () => {
    const body = table.tBodies[0];
    const asc = th.dataset.order !== 'asc';
    table.querySelectorAll('th').forEach(h => delete h.dataset.order);
    th.dataset.order = asc ? 'asc' : 'desc';
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = cellValue(a, i), y = cellValue(b, i);
      const order = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
      return asc ? order : -order;
    });
    rows.forEach(r => body.appendChild(r));
  }));
});
window.addEventListener('load', () => {
  const charts = document.querySelectorAll('figure.chart svg');
  const drawn = Array.from(charts).filter(s => { const r = s.getBoundingClientRect(); return r.width > 50 && r.height > 50; });
  document.body.dataset.charts = charts.length;
  document.body.dataset.chartsDrawn = drawn.length;
});
";

/// Escape text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// report.md as HTML, each `![…](charts/x.png)` replaced by `charts/x.svg` inline.
fn body_of(markdown: &str, dir: &Path) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut in_image = false;
    let events =
        Parser::new_ext(markdown, Options::ENABLE_TABLES).filter_map(|event| match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                in_image = true;
                let svg = std::fs::read_to_string(dir.join(dest_url.replace(".png", ".svg")));
                let inner = svg.map_or_else(
                    |_| format!("<img src=\"{}\">", escape(&dest_url)),
                    // The file's own `<?xml …?>` line has no place inside a page.
                    |svg| {
                        svg.find("<svg")
                            .map_or(svg.clone(), |at| svg[at..].to_string())
                    },
                );
                Some(Event::Html(
                    format!("<figure class=\"chart\">{inner}</figure>").into(),
                ))
            }
            Event::End(TagEnd::Image) => {
                in_image = false;
                None
            }
            _ if in_image => None,
            other => Some(other),
        });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// A run's main dev score per epoch as a small line (the axis from 0, or the lowest score
/// where it is negative, to 1).
fn curve_svg(scores: &[f64]) -> String {
    let (width, height) = (160.0, 36.0);
    let low = scores.iter().copied().fold(0.0f64, f64::min);
    let high = scores.iter().copied().fold(1.0f64, f64::max);
    let step = width / (scores.len().max(2) - 1) as f64;
    let points: Vec<String> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let y = height - (s - low) / (high - low).max(1e-9) * height;
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect();
    format!(
        "<svg class=\"curve\" width=\"{width}\" height=\"{height}\" viewBox=\"0 -1 {width} {}\"><polyline points=\"{}\"/></svg>",
        height + 2.0,
        points.join(" ")
    )
}

/// One row per finished run: its setting, seed, best score and curve.
fn runs_table(records: &[RunRecord]) -> String {
    let mut out = String::from("<h2>Every run's learning curve</h2>\n<p>Main dev score per epoch (axis 0 to 1).</p>\n<table><thead><tr><th>run</th><th>task</th><th>method</th><th>setting</th><th>seed</th><th>best</th><th>best epoch</th><th>curve</th></tr></thead><tbody>\n");
    for record in records {
        let Some(m) = &record.metrics else { continue };
        let scores: Vec<f64> = m
            .epochs
            .iter()
            .filter_map(|e| e.dev.first().map(|(_, v)| *v))
            .collect();
        let best = m
            .best_dev
            .first()
            .map_or(String::new(), |(metric, v)| format!("{metric} {v:.4}"));
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{best}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&record.id),
            escape(&record.settings.task),
            record.settings.tuning.method,
            escape(&record.setting),
            record.settings.seed,
            m.best_epoch,
            curve_svg(&scores)
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}

/// Write `report.html` into the sweep dir `dir` from its report.md text and its runs.
pub fn write_html(markdown: &str, records: &[RunRecord], title: &str, dir: &Path) -> Result<()> {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{}{}<script>{SCRIPT}</script>\n</body></html>\n",
        escape(title),
        body_of(markdown, dir),
        runs_table(records)
    );
    crate::records::io::write_atomic(&dir.join("report.html"), page.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_go_inline_and_tables_stay_tables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("charts")).unwrap();
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"10\"><rect/></svg>";
        std::fs::write(dir.path().join("charts/a.svg"), svg).unwrap();
        let md = "# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![charts/a.png](charts/a.png)\n";
        let html = body_of(md, dir.path());
        assert!(
            html.contains("<figure class=\"chart\"><svg width=\"10\""),
            "{html}"
        );
        assert!(!html.contains("<img") && !html.contains("<?xml"), "{html}");
        assert!(
            html.contains("<table>") && html.contains("<th>a</th>"),
            "{html}"
        );
    }

    #[test]
    fn a_curve_spans_its_box() {
        let svg = curve_svg(&[0.0, 0.5, 1.0]);
        assert!(
            svg.contains("points=\"0.0,36.0 80.0,18.0 160.0,0.0\""),
            "{svg}"
        );
    }
}
