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

/// Measured on the Intel host (`ptv2 bench --seq-lens 64,128`, 2 threads).
const BENCH_ROWS: &str = "framework,model,method,seq_len,batch_size,train_step_s,eval_seq_per_s,train_gflop,eval_gflop,precision,threads
ptv2 (burn flex),minilm-l6,ft,64,16,0.689,135.9,67.04,22.35,f32,2
ptv2 (burn flex),minilm-l6,ft,128,16,1.068,65.6,137.77,45.92,f32,2
ptv2 (burn flex),minilm-l6,pt,64,16,0.391,116.6,56.22,28.11,f32,2
ptv2 (burn flex),minilm-l6,pt2,64,16,0.338,141.3,44.95,22.47,f32,2
";

/// `sweep --dry-run --bench`: each pending run priced by the bench rows (FT by its own two
/// lengths, P-tuning by PT's row, which trains the same way), and the sum.
#[test]
fn a_dry_run_prices_pending_runs_by_the_bench_rows() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("priced.toml");
    std::fs::write(
        &toml,
        "[fixed]\nmodel = \"minilm-l6\"\ntask = \"sst2\"\nmax_train = 160\nmax_len = 64\nbatch_size = 16\nepochs = 2\nlr = 1e-3\nbatching = \"random\"\n[grid]\nmethod = [\"ft\", \"pt2\", \"ptuning\"]\n",
    )
    .unwrap();
    let bench = dir.path().join("bench.csv");
    std::fs::write(&bench, BENCH_ROWS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args([
            "sweep",
            &toml.display().to_string(),
            "--dry-run",
            "--reports",
        ])
        .arg(dir.path().join("reports"))
        .arg("--data")
        .arg(data_dir())
        .arg("--bench")
        .arg(&bench)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let estimate = |method: &str| estimate_of(&stdout, method);
    // FT: 2 epochs × 10 steps, each at least the line's fixed part (0.33 s) and at most a
    // 64-token step; dev (872 sentences) twice at most at the 64-token rate.
    let ft = estimate("ft");
    assert!(
        (20.0 * 0.33..=20.0 * 0.689 + 2.0 * 872.0 / 135.9).contains(&ft),
        "{ft}"
    );
    assert!(estimate("pt2") < ft, "{stdout}");
    assert!(stdout.contains("priced as pt"), "{stdout}");
    assert!(stdout.contains("3 pending runs ≈"), "{stdout}");
}

/// The seconds of a `--dry-run` line's `≈ 2m29s` (or `≈ 16s`), on the line of `method`'s run.
fn estimate_of(stdout: &str, method: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.contains(&format!(" {method} ")))
        .unwrap_or_else(|| panic!("no {method} run in:\n{stdout}"));
    let span = line
        .split("≈ ")
        .nth(1)
        .unwrap()
        .split([']', ','])
        .next()
        .unwrap();
    let span = span.trim_end_matches('s');
    let (minutes, seconds) = span.split_once('m').unwrap_or(("0", span));
    minutes.parse::<f64>().unwrap() * 60.0 + seconds.parse::<f64>().unwrap()
}
