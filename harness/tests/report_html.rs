//! report.html in a real browser (Debian's headless Chromium): the page of a small sweep loads
//! without console errors, every inline chart has a size, and a screenshot is not blank.
//! `.ci/run` installs Chromium and sets PTV2_BROWSER_TESTS, which makes a missing browser an error;
//! elsewhere the test says it was skipped when there is none.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prompt")
}

/// FT and PT2, two seeds each, on the tiny masked-LM fixture: a report with every section.
fn small_report(dir: &Path) -> PathBuf {
    let f = fixture();
    let toml = format!(
        "[fixed]\nmodel = \"{}\"\ntask = \"sst2:{},{}\"\nprompt_len = 2\nepochs = 3\nbatch_size = 4\nmax_len = 16\n\n[grid]\nmethod = [\"ft\", \"pt2\"]\nseed = [1, 2]\n\n[[override]]\nwhen = {{ method = \"ft\" }}\nset = {{ lr = 1e-3 }}\n\n[[override]]\nwhen = {{ method = \"pt2\" }}\nset = {{ lr = 3e-2 }}\n",
        f.join("model").display(),
        f.join("train.tsv").display(),
        f.join("dev.tsv").display()
    );
    let sweep = dir.join("page.toml");
    std::fs::write(&sweep, toml).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .arg("sweep")
        .arg(&sweep)
        .arg("--reports")
        .arg(dir.join("reports"))
        .args(["--workers", "1", "--quiet"])
        .status()
        .unwrap();
    assert!(status.success());
    dir.join("reports/page/report.html")
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Headless Chromium on `page` with `args`: (stdout, stderr).
fn browse(browser: &Path, page: &Path, profile: &Path, args: &[String]) -> (String, String) {
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (text(&output.stdout), text(&output.stderr))
}

/// Share of pixels in a PNG screenshot that are not the page's white.
fn inked_share(png_path: &Path) -> f64 {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buffer[..info.buffer_size()];
    let inked = pixels
        .chunks(channels)
        .filter(|px| px.iter().take(3).any(|&c| c < 200))
        .count();
    inked as f64 / (pixels.len() / channels) as f64
}

#[test]
fn the_report_page_loads_without_errors_and_draws_every_chart() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("PTV2_BROWSER_TESTS").is_none(),
            "PTV2_BROWSER_TESTS is set but there is no /usr/bin/chromium"
        );
        eprintln!("skipped: no Chromium here (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = small_report(dir.path());
    let html = std::fs::read_to_string(&page).unwrap();
    // Nothing to fetch: no external scripts, styles, images or fonts (SVG's xmlns is a name).
    for fetch in ["src=\"http", "href=\"http", "<link", "url(http", "@import"] {
        assert!(!html.contains(fetch), "the page fetches: {fetch}");
    }
    let (dom, log) = browse(
        &browser,
        &page,
        &dir.path().join("p1"),
        &["--dump-dom".into()],
    );
    let attribute = |name: &str| -> Option<usize> {
        let start = dom.find(&format!("{name}=\""))? + name.len() + 2;
        dom[start..].split('"').next()?.parse().ok()
    };
    let charts = attribute("data-charts").expect("the page's script ran");
    assert!(charts >= 3, "{charts} charts");
    assert_eq!(
        attribute("data-charts-drawn"),
        Some(charts),
        "every chart drawn"
    );
    assert_eq!(attribute("data-errors"), None, "script errors");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console: {console:?}");
    let shot = dir.path().join("page.png");
    browse(
        &browser,
        &page,
        &dir.path().join("p2"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400".into(),
        ],
    );
    let share = inked_share(&shot);
    eprintln!("screenshot: {:.1}% of pixels inked", share * 100.0);
    assert!(share > 0.02, "a blank page: {share}");
}
