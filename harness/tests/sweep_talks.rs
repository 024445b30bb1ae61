//! A sweep whose stdout is a file says what it does as it goes: a line per run started and
//! finished (with the sweep's done/total and ETA) and per epoch, there to read while the sweep
//! still runs; `--json` says the same as one JSON event per line.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prompt")
}

/// Four PT2 runs on the tiny masked-LM fixture, long enough (40 epochs) to be watched.
fn write_sweep(dir: &Path) -> std::path::PathBuf {
    let f = fixture();
    let toml = format!(
        r#"
[fixed]
model = "{model}"
task = "sst2:{train},{dev}"
method = "pt2"
prompt_len = 2
lr = 1e-2
epochs = 40
batch_size = 4
max_len = 16

[grid]
seed = [1, 2, 3, 4]
"#,
        model = f.join("model").display(),
        train = f.join("train.tsv").display(),
        dev = f.join("dev.tsv").display(),
    );
    let path = dir.join("talk.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// `ptv2 sweep` of `sweep` with stdout into `log`.
fn start(sweep: &Path, reports: &Path, log: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .arg("sweep")
        .arg(sweep)
        .arg("--reports")
        .arg(reports)
        .args(["--workers", "1"])
        .args(extra)
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_sweep_into_a_file_says_each_run_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path());
    let log = dir.path().join("stdout.txt");
    let mut child = start(&sweep, &dir.path().join("reports"), &log, &[]);
    // Read the file while the sweep runs: the first run's finish is there before the last ends.
    let deadline = Instant::now() + Duration::from_secs(300);
    let seen_while_running = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let running = child.try_wait().unwrap().is_none();
        if text.contains("[1/4, ETA") {
            break running;
        }
        assert!(
            running && Instant::now() < deadline,
            "no finished line:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(child.wait().unwrap().success());
    assert!(
        seen_while_running,
        "the first finish was written only at the end"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let starts = lines.iter().filter(|l| l.contains("] started ")).count();
    let finishes: Vec<&&str> = lines.iter().filter(|l| l.contains("] finished ")).collect();
    assert_eq!((starts, finishes.len()), (4, 4), "{text}");
    assert!(
        finishes[3].starts_with("[4/4, ETA 0 min] finished "),
        "{text}"
    );
    assert!(
        finishes.iter().all(|l| l.contains(": accuracy 0.")),
        "{text}"
    );
    let epochs = lines.iter().filter(|l| l.contains(" epoch ")).count();
    assert_eq!(epochs, 4 * 40, "a line per epoch");
}

#[test]
fn json_events_parse_and_tell_the_same_story() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path());
    let log = dir.path().join("events.jsonl");
    let mut child = start(&sweep, &dir.path().join("reports"), &log, &["--json"]);
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kind = |e: &serde_json::Value| e["event"].as_str().unwrap().to_string();
    let count = |name: &str| events.iter().filter(|e| kind(e) == name).count();
    assert_eq!(
        (count("run_started"), count("epoch"), count("run_finished")),
        (4, 160, 4)
    );
    assert_eq!(kind(&events[0]), "run_started");
    let last = events.iter().rfind(|e| kind(e) == "run_finished").unwrap();
    assert_eq!(
        (last["done"].as_u64(), last["total"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(last["status"], "ok");
    assert!(last["score"].as_f64().is_some() && last["eta_seconds"].as_f64().is_some());
}
