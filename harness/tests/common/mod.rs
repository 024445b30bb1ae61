//! What the integration tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use ptv2_harness::records::settings::RunSettings;
use ptv2_harness::run::setup::RunEnv;
use ptv2_harness::run::train::train;

/// The benchmark data: `$PTV2_DATA`, else `shared/data` beside the checkout (as CI has it).
pub fn data_dir() -> PathBuf {
    std::env::var_os("PTV2_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Train a small run of `task` into `out` (two layers of MiniLM, 16 dev examples).
#[allow(dead_code)]
pub fn small_run(task: &str, method: &str, prompt_len: usize, max_len: &str, out: &Path) {
    let prompt_len = prompt_len.to_string();
    let values = [
        ("model", "minilm-l6@2"),
        ("task", task),
        ("method", method),
        ("prompt_len", &prompt_len),
        ("lr", "3e-2"),
        ("epochs", "1"),
        ("batch_size", "8"),
        ("max_train", "32"),
        ("max_eval", "16"),
        ("max_len", max_len),
    ];
    let settings = RunSettings::from_values(&values, "test").unwrap();
    let env = RunEnv {
        cache: ptv2_models::hub::default_cache_dir(),
        device: "cpu".into(),
        data_dir: data_dir(),
        out: out.to_path_buf(),
        progress: None,
        verbose: false,
        stop_after: None,
    };
    train(&settings, &env).unwrap();
}

/// `ptv2 predict` of these inputs with the run in `dir`.
#[allow(dead_code)]
pub fn predict(dir: &Path, inputs: &[Value]) -> Vec<Value> {
    let file = dir.join("inputs.jsonl");
    let lines: Vec<String> = inputs.iter().map(|v| v.to_string()).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .arg("predict")
        .arg("--checkpoint")
        .arg(dir)
        .arg("--input")
        .arg(&file)
        .arg("--data")
        .arg(data_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ptv2 predict: {stderr}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// SIGKILL to the process and its workers; returns once none of them is left.
#[allow(dead_code)]
pub fn kill_group(child: &mut std::process::Child) {
    let group = -(child.id() as libc::pid_t);
    // SAFETY: signals to the process group this test started.
    unsafe { libc::kill(group, libc::SIGKILL) };
    let _ = child.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // SAFETY: signal 0 only asks whether any process of the group is left.
    while unsafe { libc::kill(group, 0) } == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
