//! `--device cuda` in a build with burn-cuda (`just build-cuda`, `just test-gpu`). Without an
//! NVIDIA driver (this project's build machines) `ptv2 encode` stops with one line naming what is
//! missing, no panic and no backtrace, and writes nothing; with a driver it encodes.
#![cfg(feature = "cuda")]

use std::path::Path;
use std::process::Command;

#[test]
fn encode_on_cuda_runs_or_says_in_one_line_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("encode.json");
    let run = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args(["encode", "--device", "cuda", "--text", "a frozen backbone"])
        .arg("--out")
        .arg(&out)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    if Path::new("/proc/driver/nvidia/version").exists() {
        assert!(run.status.success(), "with a driver: {stderr}");
        assert!(out.exists());
        return;
    }
    eprintln!("without a driver: {stderr}");
    assert!(!run.status.success());
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(
        lines[0].starts_with("error: device cuda cannot start:"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    assert!(!out.exists());
}
