//! `ptv2 train --device wgpu` end to end (on lavapipe in CI): a PT2 run on the tiny DeBERTa
//! fixture (relative attention's gathers on the GPU path too) trains, its metrics.json names the
//! device, and the checkpoint evaluated on the CPU gives the dev score the GPU run recorded.
#![cfg(feature = "wgpu")]

use ptv2_harness::records::settings::RunSettings;
use ptv2_harness::run::setup::RunEnv;
use ptv2_harness::run::train::train;
use ptv2_harness::run::trained::evaluate_checkpoint;

mod common;
use common::data_dir;

fn env(out: std::path::PathBuf, device: &str) -> RunEnv {
    RunEnv {
        cache: ptv2_models::hub::default_cache_dir(),
        device: device.into(),
        data_dir: data_dir(),
        out,
        progress: None,
        verbose: false,
        stop_after: None,
    }
}

#[test]
fn a_wgpu_run_trains_and_its_checkpoint_scores_the_same_on_the_cpu() {
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures/tiny_deberta_v2");
    let values = [
        ("model", model.to_str().unwrap()),
        ("task", "sst2"),
        ("method", "pt2"),
        ("prompt_len", "4"),
        ("lr", "1e-2"),
        ("epochs", "2"),
        ("batch_size", "8"),
        ("grad_accum", "2"),
        ("max_train", "32"),
        ("max_eval", "32"),
        ("max_len", "32"),
    ];
    let settings = RunSettings::from_values(&values, "test").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics = train(&settings, &env(dir.path().to_path_buf(), "wgpu")).unwrap();
    eprintln!("device: {}; dev {:?}", metrics.device, metrics.best_dev);
    assert!(
        metrics.device.contains("Wgpu") || metrics.device.contains("wgpu"),
        "{}",
        metrics.device
    );
    assert!(metrics.epochs.iter().all(|e| e.train_loss.is_finite()));
    let (_, on_cpu) =
        evaluate_checkpoint(dir.path(), &env(dir.path().to_path_buf(), "cpu")).unwrap();
    let (gpu, cpu) = (metrics.best_dev[0].1, on_cpu[0].1);
    // 32 dev sentences: one flipped near-tie would move accuracy by 1/32.
    assert!(
        (gpu - cpu).abs() <= 1.0 / 32.0 + 1e-9,
        "wgpu {gpu} vs cpu {cpu}"
    );
}
