//! `ptv2 sweep` end to end on real data: runs land under reports/NAME/runs/<id>/, a second run is a
//! no-op, two local workers give the same results as one process, and a failing run is recorded
//! while the sweep goes on.

use std::path::Path;
use std::process::Command;

use ptv2_harness::orchestration::sweep::expand;
use ptv2_harness::records::run_dir::{RunDir, RunStatus};

mod common;
use common::data_dir;

const SWEEP: &str = r#"
description = "test sweep"
[fixed]
model = "minilm-l6@1"
epochs = 1
batch_size = 8
max_train = 16
max_eval = 16
max_len = 48
lr = 1e-2
prompt_len = 4
[grid]
task = ["rte", "wsc"]
method = ["ft", "pt2"]
seed = [1, 2]
[[override]]
when = { method = "ft" }
set = { lr = 5e-5 }
"#;

fn sweep(toml: &Path, reports: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args(["sweep", &toml.display().to_string(), "--quiet", "--reports"])
        .arg(reports)
        .arg("--data")
        .arg(data_dir())
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success(), "ptv2 sweep failed: {status}");
}

fn best_dev(run_dir: &Path) -> Vec<(String, f64)> {
    RunDir(run_dir.to_path_buf()).metrics().unwrap().best_dev
}

fn read_status(run_dir: &Path) -> Option<ptv2_harness::records::run_dir::StatusRecord> {
    RunDir(run_dir.to_path_buf()).status()
}

#[test]
fn sweep_resumes_shards_over_workers_and_records_failures() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("tiny.toml");
    std::fs::write(&toml, SWEEP).unwrap();
    let runs = expand(SWEEP, "tiny.toml").unwrap();
    assert_eq!(runs.len(), 8);

    let one = dir.path().join("one");
    sweep(&toml, &one, &["--workers", "1"]);
    let two = dir.path().join("two");
    sweep(&toml, &two, &["--workers", "2"]);

    for run in &runs {
        let (a, b) = (
            one.join("tiny/runs").join(&run.id),
            two.join("tiny/runs").join(&run.id),
        );
        let status = read_status(&a).expect("status.json");
        assert_eq!(status.status, read_status(&b).unwrap().status);
        if run.settings.task == "wsc" {
            // No WSC train split in the shared data: recorded, and the sweep went on.
            assert_eq!(status.status, RunStatus::Failed);
            assert!(status.error.unwrap().contains("missing file"));
        } else {
            assert_eq!(status.status, RunStatus::Ok);
            assert_eq!(
                best_dev(&a),
                best_dev(&b),
                "run {} differs between 1 and 2 workers",
                run.id
            );
            assert!(
                !a.join("checkpoint.safetensors").exists(),
                "sweeps drop checkpoints by default"
            );
        }
    }

    // A second run finds everything done and trains nothing.
    let stamp = |p: &Path| {
        std::fs::metadata(p.join("tiny/runs").join(&runs[0].id).join("status.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = stamp(&one);
    sweep(&toml, &one, &[]);
    assert_eq!(stamp(&one), before);
}

/// A run whose loss turns NaN (forced by `PTV2_FAULT=nan-loss` at the second step) is recorded
/// as diverged with where it happened; the sweep finishes and its report lists it.
#[test]
fn a_diverging_run_is_marked_and_the_sweep_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("nan.toml");
    let text = "[fixed]\nmodel = \"minilm-l6@1\"\ntask = \"rte\"\nmethod = \"pt2\"\nlr = 1e-2\nprompt_len = 4\nepochs = 1\nbatch_size = 8\nmax_train = 16\nmax_eval = 16\nmax_len = 48\n";
    std::fs::write(&toml, text).unwrap();
    let reports = dir.path().join("reports");
    let status = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args(["sweep", &toml.display().to_string(), "--quiet", "--reports"])
        .arg(&reports)
        .arg("--data")
        .arg(data_dir())
        .env("PTV2_FAULT", "nan-loss")
        .status()
        .unwrap();
    assert!(status.success(), "the sweep goes on past a diverged run");
    let run = &expand(text, "nan.toml").unwrap()[0];
    let status = read_status(&reports.join("nan/runs").join(&run.id)).unwrap();
    assert_eq!(status.status, RunStatus::Diverged);
    let error = status.error.unwrap();
    assert!(
        error.contains("diverged: loss is NaN at epoch 1 step 2"),
        "{error}"
    );
    let report = std::fs::read_to_string(reports.join("nan/report.md")).unwrap();
    assert!(report.contains("diverged"), "{report}");
}
