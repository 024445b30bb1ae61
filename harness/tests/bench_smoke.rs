//! `ptv2 bench` runs each measurement in its own process and writes its CSV and markdown table.

use std::process::Command;

#[test]
fn bench_on_the_tiny_model_writes_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args([
            "bench",
            "--models",
            "tiny",
            "--seq-lens",
            "16",
            "--warmup",
            "1",
            "--steps",
            "1",
            "--python",
            "/nonexistent-python",
            "--out",
        ])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let csv = std::fs::read_to_string(dir.path().join("bench.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    for (row, method) in rows.iter().zip(["ft", "pt", "pt2"]) {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[2], method);
        assert!(
            fields[5].parse::<f64>().unwrap() > 0.0,
            "train step time in {row}"
        );
        assert!(
            fields[8].parse::<u64>().unwrap() > 0,
            "checkpoint bytes in {row}"
        );
        assert!(
            fields[11].parse::<f64>().unwrap() > 0.0,
            "train GFLOP in {row}"
        );
    }
    let md = std::fs::read_to_string(dir.path().join("bench.md")).unwrap();
    assert!(md.contains("| tiny | pt2 | 16 |"), "{md}");
    let gemm = md
        .split("1024×1024×1024 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|gflops| gflops.parse::<f64>().ok());
    assert!(gemm.is_some_and(|g| g > 0.0), "GEMM peak in {md}");
    assert!(md.contains("CPU threads"), "machine line in {md}");
}
