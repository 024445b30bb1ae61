//! The PyTorch replay (`framework = pytorch`, `ptv2 replay`) trains what ptv2 trains: with every
//! dropout off, ptv2's run and its replay in PyTorch + transformers + PEFT start from the same
//! weights, see the same batches at the same learning rates, and so must give the same training
//! losses and dev scores, up to float rounding. Needs a Python with torch, transformers==4.46.3
//! and peft==0.11.1 (`$PTV2_PYTHON`, else `python3`); ignored by a plain `cargo test`, run by `just test`
//! where that Python exists.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ptv2_harness::records::run_dir::RunMetrics;

fn reference_python() -> Result<String, String> {
    let python = std::env::var("PTV2_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = Command::new(&python)
        .args(["-c", "import torch, transformers, peft, safetensors"])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !check.status.success() {
        return Err(format!(
            "{python} cannot import torch, transformers, peft, safetensors (set PTV2_PYTHON)"
        ));
    }
    Ok(python)
}

/// MiniLM with every dropout rate at 0, its weights and tokenizer linked from the cache.
fn model_without_dropout(dir: &Path) -> PathBuf {
    let cache = ptv2_models::hub::default_cache_dir();
    let source = ptv2_models::resolve_model("minilm-l6", &cache).unwrap().dir;
    let model = dir.join("minilm-no-dropout");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "config.json" {
            std::os::unix::fs::symlink(entry.path(), model.join(entry.file_name())).unwrap();
        }
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json")).unwrap())
            .unwrap();
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    model
}

fn ptv2(args: &[&str], python: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args(args)
        .arg("--data")
        .arg(common::data_dir())
        .env("PTV2_PYTHON", python)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ptv2 {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn metrics(dir: &Path) -> RunMetrics {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

/// Ignored in the plain test run; `just test` runs it where `$PTV2_PYTHON` has the stack.
#[test]
#[ignore = "needs a Python with torch, transformers 4.46.3, peft 0.11.1 ($PTV2_PYTHON); just test runs it where there is one"]
fn a_replay_without_dropout_matches_the_ptv2_run() {
    let python = reference_python().unwrap_or_else(|why| panic!("{why}"));
    let tmp = tempfile::tempdir().unwrap();
    let model = format!("{}@2", model_without_dropout(tmp.path()).display());
    let cases = [
        ("sst2", "pt2", "1e-2", "64"),
        ("sst2", "pt", "3e-2", "64"),
        ("sst2", "ptuning", "1e-2", "64"),
        ("sst2", "prefix --reparam-hidden 16", "1e-2", "64"),
        (
            "sst2",
            "ptuning --ptuning-encoder mlp --reparam-hidden 16",
            "1e-2",
            "64",
        ),
        ("rte", "ft", "1e-4", "128"),
        ("sst2", "lora", "1e-3", "64"),
        ("wnut17", "lora", "1e-3", "64"),
        ("wnut17", "pt2", "1e-2", "64"),
        ("squad", "pt2", "1e-2", "128"),
    ];
    for case in cases {
        train_and_replay(case, &model, tmp.path(), &python);
    }
}

/// Train one case in ptv2, replay it, and compare the two runs epoch by epoch. `method` is the
/// method's name and any of its flags.
fn train_and_replay(
    (task, method, lr, max_len): (&str, &str, &str, &str),
    model: &str,
    tmp: &Path,
    python: &str,
) {
    let name = method.replace(' ', "");
    let ours = tmp.join(format!("{task}-{name}"));
    let replay = tmp.join(format!("{task}-{name}-pytorch"));
    #[rustfmt::skip]
    let mut train = vec![
        "train", "--model", model, "--task", task, "--prompt-len", "4",
        "--lr", lr, "--epochs", "2", "--batch-size", "8", "--max-train", "48",
        "--max-eval", "32", "--max-len", max_len, "--dropout", "0",
        "--out", ours.to_str().unwrap(), "--method",
    ];
    train.extend(method.split_whitespace());
    ptv2(&train, python);
    ptv2(
        &[
            "replay",
            ours.to_str().unwrap(),
            "--out",
            replay.to_str().unwrap(),
        ],
        python,
    );
    let (a, b) = (metrics(&ours), metrics(&replay));
    assert!(b.device.starts_with("pytorch"), "{}", b.device);
    assert_eq!(
        std::fs::read(ours.join("train_order.json")).unwrap(),
        std::fs::read(replay.join("train_order.json")).unwrap()
    );
    for (x, y) in a.epochs.iter().zip(&b.epochs) {
        let (loss_gap, score_gap) = (
            (x.train_loss - y.train_loss).abs(),
            (x.dev[0].1 - y.dev[0].1).abs(),
        );
        eprintln!(
            "{task} {method} epoch {}: loss {:.6} vs {:.6} (gap {loss_gap:.2e}), dev {} {:.4} vs {:.4}",
            x.epoch, x.train_loss, y.train_loss, x.dev[0].0, x.dev[0].1, y.dev[0].1
        );
        // Measured here: loss gaps ≤ 3e-6, dev scores equal. One dev example of 32 may
        // flip on another CPU's rounding.
        assert!(loss_gap < 1e-4, "{task} {method}: loss gap {loss_gap}");
        assert!(
            score_gap <= 1.0 / 32.0 + 1e-9,
            "{task} {method}: dev gap {score_gap}"
        );
    }
    assert!(
        !replay.join("replay/train.safetensors").exists(),
        "bundle tensors kept"
    );
}

/// PEFT's own loop (`framework = peft-native`) trains the configuration its own way — its own
/// inits, its own shuffled batches — so its losses are not ptv2's, yet a second run of the same
/// seed gives the same ones; it takes as many steps as ptv2 and its dev scores are ptv2's scoring.
#[test]
#[ignore = "needs a Python with torch, transformers 4.46.3, peft 0.11.1 ($PTV2_PYTHON); just test runs it where there is one"]
fn peft_native_trains_its_own_way_and_repeats() {
    let python = reference_python().unwrap_or_else(|why| panic!("{why}"));
    let tmp = tempfile::tempdir().unwrap();
    for task in ["sst2", "wnut17"] {
        let run = |framework: &str, name: &str| {
            let out = tmp.path().join(format!("{task}-{name}"));
            #[rustfmt::skip]
            let train = [
                "train", "--model", "minilm-l6@2", "--task", task, "--method", "pt2",
                "--prompt-len", "4", "--lr", "1e-2", "--epochs", "2", "--batch-size", "8",
                "--max-train", "44", "--max-eval", "32", "--max-len", "64",
                "--framework", framework, "--out", out.to_str().unwrap(),
            ];
            ptv2(&train, &python);
            metrics(&out)
        };
        let (ours, native, again) = (
            run("ptv2", "ptv2"),
            run("peft-native", "a"),
            run("peft-native", "b"),
        );
        assert!(native.device.starts_with("pytorch"), "{}", native.device);
        assert_eq!(
            (native.steps, ours.steps),
            (12, 12),
            "ceil(44 / 8) steps an epoch, as ptv2"
        );
        let losses = |m: &RunMetrics| m.epochs.iter().map(|e| e.train_loss).collect::<Vec<_>>();
        assert_eq!(
            losses(&native),
            losses(&again),
            "{task}: same seed, same run"
        );
        assert_eq!(native.epochs[1].dev, again.epochs[1].dev);
        let gap = (losses(&native)[0] - losses(&ours)[0]).abs();
        assert!(
            gap > 1e-4,
            "{task}: PEFT's own loop matched ptv2's losses ({gap}): not its own batches"
        );
        assert!(native.epochs.iter().all(|e| e.train_loss.is_finite()));
    }
}
