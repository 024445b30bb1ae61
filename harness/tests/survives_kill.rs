//! Runs and sweeps that survive SIGKILL: a run killed after its second epoch and started again
//! ends bitwise where an uninterrupted run does; a sweep of three workers killed at three moments
//! and run again ends with the same results, each run once, every file whole.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ptv2_harness::orchestration::sweep::expand;
use ptv2_harness::records::run_dir::{RunDir, RunMetrics, RunStatus};
use ptv2_models::MethodKind;

mod common;
use common::{data_dir, kill_group};

/// `ptv2 ARGS` started in its own process group (so that killing it kills its workers too).
fn start<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args(args)
        .arg("--data")
        .arg(data_dir())
        .process_group(0)
        .spawn()
        .unwrap()
}

fn finish(mut child: Child) {
    assert!(child.wait().unwrap().success(), "ptv2 failed");
}

/// Named scores, as metrics.json holds them.
type Scores = Vec<(String, f64)>;

/// What a run computed: per-epoch loss and dev scores, the best epoch and its scores.
fn outcome(m: &RunMetrics) -> (Vec<(f64, Scores)>, usize, Scores) {
    let epochs = m
        .epochs
        .iter()
        .map(|e| (e.train_loss, e.dev.clone()))
        .collect();
    (epochs, m.best_epoch, m.best_dev.clone())
}

/// A small run of `method`, with `extra` flags (the model among them).
fn train_args(out: &Path, method: MethodKind, extra: &[&str]) -> Vec<String> {
    let lr = if method.freezes_backbone() {
        "3e-2"
    } else {
        "5e-4"
    };
    let args = [
        "train",
        "--task",
        "rte",
        "--method",
        method.name(),
        "--lr",
        lr,
        "--prompt-len",
        "4",
        "--epochs",
        "4",
        "--batch-size",
        "8",
        "--max-train",
        "64",
        "--max-eval",
        "32",
        "--max-len",
        "48",
    ];
    let mut args: Vec<String> = args.iter().chain(extra).map(|s| s.to_string()).collect();
    args.push("--out".into());
    args.push(out.display().to_string());
    args
}

/// Every method the registry lists that trains (zero-shot prompting is one evaluation, with
/// nothing to resume), and the variants that train tensors of their own: a reparameterized PT2
/// prefix (its MLP) and DeBERTa's context pooler (trained with the head).
fn resume_cases() -> Vec<(String, MethodKind, Vec<String>)> {
    let minilm = ["--model", "minilm-l6@1"];
    let mut cases: Vec<(String, MethodKind, Vec<String>)> = MethodKind::ALL
        .into_iter()
        .filter(|m| !m.trains_nothing())
        .map(|m| (m.name().to_string(), m, minilm.map(String::from).to_vec()))
        .collect();
    let reparam = [minilm[0], minilm[1], "--reparam-hidden", "16"]
        .map(String::from)
        .to_vec();
    cases.push(("pt2 reparameterized".into(), MethodKind::Pt2, reparam));
    let deberta =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/tiny_deberta_v2");
    let context = [
        "--model",
        &deberta.display().to_string(),
        "--missing-pooler",
        "context",
    ]
    .map(String::from)
    .to_vec();
    cases.push((
        "lora, deberta context pooler".into(),
        MethodKind::Lora,
        context,
    ));
    cases
}

/// Wait until the run in `dir` has saved its state after `epochs` epochs.
fn wait_for_epochs(dir: &Path, epochs: u64) {
    let state = dir.join("resume/state.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| Some(v["epochs"].as_array()?.len() as u64));
        if done >= Some(epochs) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no epoch {epochs} in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Train `args` straight through into `whole` and, stopped by `signal` after epoch 2 and started
/// again, into `cut`; both must end the same: per-epoch losses, dev scores, best epoch and
/// checkpoint bytes.
fn stopped_and_resumed_ends_the_same(case: &str, args: impl Fn(&Path) -> Vec<String>, signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    finish(start(&args(&whole)));

    let mut child = start(&args(&cut));
    wait_for_epochs(&cut, 2);
    if signal == libc::SIGKILL {
        kill_group(&mut child);
    } else {
        // SAFETY: a signal to the process this test started.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert!(
            !child.wait().unwrap().success(),
            "an interrupted run exits non-zero"
        );
    }
    assert!(
        !cut.join("metrics.json").exists(),
        "{case}: stopped before the end"
    );
    finish(start(&args(&cut)));

    let (a, b) = (RunDir(whole.clone()), RunDir(cut.clone()));
    let case = format!("{case}, signal {signal}");
    assert_eq!(
        outcome(&a.metrics().unwrap()),
        outcome(&b.metrics().unwrap()),
        "{case}"
    );
    let bytes = |d: &Path| std::fs::read(d.join("checkpoint.safetensors")).unwrap();
    assert!(bytes(&whole) == bytes(&cut), "{case}: checkpoints differ");
    assert!(
        !cut.join("resume").exists(),
        "the saved state goes when the run ends"
    );
}

#[test]
fn every_method_killed_after_its_second_epoch_resumes_to_the_same_end() {
    let cases = resume_cases();
    assert!(cases.len() > MethodKind::ALL.len());
    for (case, method, extra) in &cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let args = |out: &Path| train_args(out, *method, &extra);
        stopped_and_resumed_ends_the_same(case, args, libc::SIGKILL);
    }
}

#[test]
fn a_run_stopped_by_sigterm_resumes_to_the_same_end() {
    // Slurm's preemption: the run stops at the next step and saves nothing half-done.
    let args = |out: &Path| train_args(out, MethodKind::Pt2, &["--model", "minilm-l6@1"]);
    stopped_and_resumed_ends_the_same("pt2", args, libc::SIGTERM);
}

const SWEEP: &str = r#"
[fixed]
model = "minilm-l6@1"
task = "rte"
epochs = 3
batch_size = 8
max_train = 48
max_eval = 32
max_len = 64
prompt_len = 4
lr = 3e-2
[grid]
method = ["ft", "pt2"]
seed = [1, 2, 3]
[[override]]
when = { method = "ft" }
set = { lr = 5e-4 }
"#;

fn sweep(toml: &Path, reports: &Path) -> Child {
    let (toml, reports) = (toml.display().to_string(), reports.display().to_string());
    start(&[
        "sweep",
        &toml,
        "--reports",
        &reports,
        "--workers",
        "3",
        "--quiet",
    ])
}

#[test]
fn a_sweep_killed_three_times_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("kill.toml");
    std::fs::write(&toml, SWEEP).unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    finish(sweep(&toml, &whole));
    for wait_ms in [1500, 4000, 2500] {
        let mut child = sweep(&toml, &cut);
        std::thread::sleep(Duration::from_millis(wait_ms));
        kill_group(&mut child);
    }
    finish(sweep(&toml, &cut));

    let runs = expand(SWEEP, "kill.toml").unwrap();
    for run in &runs {
        let (a, b) = (
            RunDir(whole.join("kill/runs").join(&run.id)),
            RunDir(cut.join("kill/runs").join(&run.id)),
        );
        assert_eq!(b.status().unwrap().status, RunStatus::Ok);
        assert_eq!(
            outcome(&a.metrics().unwrap()),
            outcome(&b.metrics().unwrap()),
            "run {}",
            run.id
        );
        assert!(!b.file("claim.json").exists() && !b.file("resume").exists());
    }
    // Every JSON file whole; one results row per run and metric.
    for entry in walk(&cut) {
        if entry.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&entry).unwrap();
            assert!(
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{}",
                entry.display()
            );
        }
    }
    let csv = std::fs::read_to_string(cut.join("kill/results.csv")).unwrap();
    let mut keys: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(1).collect())
        .collect();
    let rows = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(
        rows,
        runs.len(),
        "one main-metric row per run (RTE has one metric)"
    );
    assert_eq!(keys.len(), runs.len(), "no run twice");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
