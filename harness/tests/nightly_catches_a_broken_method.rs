//! The nightly check can catch a broken method: the smoke sweep with a PT2 whose prefix never
//! reaches attention (`PTV2_FAULT=prefix-detached`: only the head learns) fails `ptv2 check`
//! against the committed baseline on exactly the PT2 configuration, while FT and PT pass. (The
//! unbroken sweep passing the same check is `just test-slurm` and `just nightly`.)

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::data_dir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ptv2(args: &[&str], reports: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .current_dir(repo())
        .env("PTV2_FAULT", "prefix-detached")
        .args(args)
        .arg("--reports")
        .arg(reports)
        .output()
        .unwrap()
}

#[test]
fn a_prefix_that_never_reaches_attention_fails_the_nightly_check() {
    let reports = tempfile::tempdir().unwrap();
    let data = data_dir().display().to_string();
    let sweep = ptv2(
        &[
            "sweep",
            "smoke",
            "--quiet",
            "--workers",
            "2",
            "--data",
            &data,
        ],
        reports.path(),
    );
    assert!(
        sweep.status.success(),
        "{}",
        String::from_utf8_lossy(&sweep.stderr)
    );
    let check = ptv2(
        &[
            "check",
            "smoke",
            "--baseline",
            "experiments/baselines/smoke.csv",
        ],
        reports.path(),
    );
    let table = String::from_utf8_lossy(&check.stdout);
    assert!(
        !check.status.success(),
        "the check passed a broken PT2:\n{table}"
    );
    let regressed: Vec<&str> = table.lines().filter(|l| l.contains("REGRESSED")).collect();
    assert!(!regressed.is_empty(), "{table}");
    assert!(
        regressed.iter().all(|l| l.contains("method=pt2")),
        "{table}"
    );
    for method in ["method=ft", "method=pt "] {
        assert!(
            table
                .lines()
                .any(|l| l.contains(method) && l.trim_end().ends_with("ok")),
            "{method} should still pass:\n{table}"
        );
    }
}
