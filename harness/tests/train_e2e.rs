//! End to end on the real model and real data: `ptv2 train` on an RTE / SST-2 subset writes its
//! files, `ptv2 eval` reproduces the dev score exactly, and the same seed gives the same scores; a
//! LoRA run on WNUT-17 is scored on the labelled test split at its best dev epoch.

use std::path::PathBuf;

use ptv2_harness::records::run_dir::{RunMetrics, CHECKPOINT_FILE};
use ptv2_harness::records::settings::RunSettings;
use ptv2_harness::run::setup::RunEnv;
use ptv2_harness::run::train::train;
use ptv2_harness::run::trained::evaluate_checkpoint;

mod common;
use common::data_dir;

fn config(task: &str, method: &str) -> RunSettings {
    let lr = if method == "ft" { "5e-5" } else { "1e-2" };
    let values = [
        ("task", task),
        ("method", method),
        ("prompt_len", "8"),
        ("lr", lr),
        ("epochs", "2"),
        ("batch_size", "8"),
        ("seed", "3"),
        ("max_train", "24"),
        ("max_eval", "16"),
        ("max_len", "64"),
    ];
    RunSettings::from_values(&values, "test").unwrap()
}

fn env(out: PathBuf) -> RunEnv {
    RunEnv {
        cache: ptv2_models::hub::default_cache_dir(),
        device: "cpu".into(),
        data_dir: data_dir(),
        out,
        progress: None,
        verbose: false,
        stop_after: None,
    }
}

fn run(config: &RunSettings) -> (tempfile::TempDir, RunMetrics) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = train(config, &env(dir.path().to_path_buf())).unwrap();
    (dir, metrics)
}

#[test]
fn pt2_run_writes_files_and_eval_reproduces_the_score() {
    let config = config("rte", "pt2");
    let (dir, metrics) = run(&config);
    for file in [
        "config.json",
        "metrics.json",
        CHECKPOINT_FILE,
        "dev_predictions.tsv",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    // MiniLM-L6: P·L·2·H = 8·6·2·384, head 384·2 + 2
    assert_eq!(metrics.params.trainable, 8 * 6 * 2 * 384 + 384 * 2 + 2);
    assert_eq!(metrics.epochs.len(), 2);
    // One count everywhere: epochs are 1-based in metrics.json as in the progress lines.
    let numbers: Vec<usize> = metrics.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(numbers, vec![1, 2]);
    assert!((1..=2).contains(&metrics.best_epoch));
    assert_eq!(metrics.dev_examples, 16);
    // Only prefix + head are stored: a few tens of KB, not the 90 MB backbone.
    assert!(
        metrics.checkpoint_bytes < 200_000,
        "checkpoint {} bytes",
        metrics.checkpoint_bytes
    );
    let predictions = std::fs::read_to_string(dir.path().join("dev_predictions.tsv")).unwrap();
    assert_eq!(predictions.lines().count(), 17);

    let (_, scores) = evaluate_checkpoint(dir.path(), &env(dir.path().to_path_buf())).unwrap();
    assert_eq!(
        scores, metrics.best_dev,
        "eval must reproduce the best epoch's dev score exactly"
    );
    // A checkpoint that is not the one the run wrote is refused.
    let path = dir.path().join(CHECKPOINT_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = evaluate_checkpoint(dir.path(), &env(dir.path().to_path_buf()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not the") && err.contains("sha256"),
        "{err}"
    );
}

#[test]
fn same_seed_gives_the_same_scores() {
    let config = config("sst2", "pt");
    let (_, first) = run(&config);
    let (_, second) = run(&config);
    let losses = |m: &RunMetrics| {
        m.epochs
            .iter()
            .map(|e| (e.train_loss, e.dev.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&first), losses(&second));
}

#[test]
fn ft_checkpoint_holds_the_full_model_and_reloads() {
    let mut config = config("sst2", "ft");
    config.epochs = 1;
    let (dir, metrics) = run(&config);
    assert_eq!(metrics.params.trainable, metrics.params.total);
    assert!(
        metrics.checkpoint_bytes > 80_000_000,
        "FT checkpoint {} bytes",
        metrics.checkpoint_bytes
    );
    let (_, scores) = evaluate_checkpoint(dir.path(), &env(dir.path().to_path_buf())).unwrap();
    assert_eq!(scores, metrics.best_dev);
}

#[test]
fn lora_on_wnut17_scores_the_test_split_at_the_best_dev_epoch() {
    let mut config = config("wnut17", "lora");
    config.lr = 3e-3;
    let (dir, metrics) = run(&config);
    // LoRA r = 8 on query and value of 6 layers (384 → 8 → 384), and the 13-tag head.
    assert_eq!(
        metrics.params.trainable,
        6 * 2 * (384 * 8 + 8 * 384) + 384 * 13 + 13
    );
    let (_, scores) = evaluate_checkpoint(dir.path(), &env(dir.path().to_path_buf())).unwrap();
    assert_eq!(
        scores, metrics.best_dev,
        "eval of the merged LoRA reproduces dev"
    );

    let test = metrics
        .best_test
        .clone()
        .expect("WNUT-17 has a labelled test split");
    assert_eq!(test[0].0, "f1");
    // The written predictions are the test split's first max_eval sentences, and score to the
    // recorded value by the task's own scorer.
    let view = ptv2_harness::run::tasks::test_view("wnut17", &data_dir()).unwrap();
    let mut task = ptv2_harness::run::tasks::load_task(&view, &data_dir()).unwrap();
    task.subset(None, config.max_eval, Default::default());
    let predictions = dir.path().join("test_predictions.conll");
    let rescored = task.score_file(&predictions).unwrap();
    assert_eq!(rescored[0], test[0]);
    let sentences = std::fs::read_to_string(&predictions)
        .unwrap()
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .count();
    assert_eq!(sentences, 16);
    // Dev's own scores are not test's: two splits were scored.
    assert_ne!(
        std::fs::read(dir.path().join("dev_predictions.conll")).unwrap(),
        std::fs::read(&predictions).unwrap()
    );
}

#[test]
fn missing_task_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = env(dir.path().join("out"));
    env.data_dir = dir.path().to_path_buf();
    let err = train(&config("rte", "pt2"), &env).unwrap_err().to_string();
    assert!(
        err.contains("missing file") && err.contains("glue/RTE/train.tsv"),
        "{err}"
    );
}

/// A DeBERTa-v2 dir (the tiny random fixture of `tools/reference/make_deberta_fixtures.py`:
/// relative attention, convolution, sentencepiece-style words) runs through the harness like any
/// HF dir: PT2 on WNUT-17 (the reference's DeBERTa-v2 task), eval reproduces dev, test is scored.
#[test]
fn pt2_on_a_deberta_v2_dir_trains_and_eval_reproduces_dev() {
    let config = on_tiny_deberta(config("wnut17", "pt2"));
    let (dir, metrics) = run(&config);
    // P · layers · 2 · hidden, and the 13-tag head.
    assert_eq!(metrics.params.trainable, 8 * 2 * 2 * 32 + 32 * 13 + 13);
    let (_, scores) = evaluate_checkpoint(dir.path(), &env(dir.path().to_path_buf())).unwrap();
    assert_eq!(scores, metrics.best_dev);
    assert!(
        metrics.best_test.is_some(),
        "WNUT-17's test split is scored"
    );
}

fn on_tiny_deberta(mut config: RunSettings) -> RunSettings {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures/tiny_deberta_v2");
    config.model = dir.to_string_lossy().into_owned();
    config.max_len = 48;
    config
}

/// THUDM's DeBERTa sequence head (`missing_pooler = context`): the ContextPooler trains, is saved
/// with the run, and reloads so that eval reproduces dev.
#[test]
fn a_deberta_context_pooler_is_saved_and_reloaded() {
    let mut config = on_tiny_deberta(config("sst2", "pt2"));
    config.missing_pooler = ptv2_harness::records::settings::MissingPooler::Context;
    let (dir, metrics) = run(&config);
    // prefix + ContextPooler (32 × 32 + 32) + 2-class head
    assert_eq!(
        metrics.params.trainable,
        8 * 2 * 2 * 32 + 32 * 32 + 32 + 32 * 2 + 2
    );
    let (_, scores) = evaluate_checkpoint(dir.path(), &env(dir.path().to_path_buf())).unwrap();
    assert_eq!(scores, metrics.best_dev);
}

/// Gradient accumulation slices each batch, not the data: without dropout, three slices train
/// the same run as one pass (the same batches, steps and learning rates), up to float rounding.
#[test]
fn gradient_accumulation_trains_the_same_run() {
    let tmp = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures/tiny_deberta_v2");
    let model = tmp.path().join("tiny-deberta-no-dropout");
    std::fs::create_dir(&model).unwrap();
    for file in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(source.join(file), model.join(file)).unwrap();
    }
    let text = std::fs::read_to_string(source.join("config.json")).unwrap();
    let mut model_config: serde_json::Value = serde_json::from_str(&text).unwrap();
    model_config["hidden_dropout_prob"] = 0.0.into();
    model_config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(model.join("config.json"), model_config.to_string()).unwrap();

    let mut whole = on_tiny_deberta(config("sst2", "pt2"));
    whole.model = model.to_string_lossy().into_owned();
    whole.dropout = 0.0;
    let mut sliced = whole.clone();
    sliced.grad_accum = 3;
    let (_, a) = run(&whole);
    let (_, b) = run(&sliced);
    assert_ne!(
        whole.id(),
        sliced.id(),
        "grad_accum is a setting of the run"
    );
    for (x, y) in a.epochs.iter().zip(&b.epochs) {
        let gap = (x.train_loss - y.train_loss).abs();
        eprintln!(
            "epoch {}: loss {} vs {} (gap {gap:.1e})",
            x.epoch, x.train_loss, y.train_loss
        );
        assert!(gap < 1e-4 * x.train_loss, "epoch {}: {gap}", x.epoch);
    }
    assert_eq!(a.steps, b.steps, "the same optimizer steps");
}

/// `random:DIR`: a dir's shape and tokenizer with random weights (what gpu-check times a
/// RoBERTa-large-sized run with); drawn from the run's seed, so a seed gives one run.
#[test]
fn random_weights_of_a_dirs_shape_train_the_same_for_a_seed() {
    let mut config = on_tiny_deberta(config("wnut17", "pt2"));
    config.epochs = 1;
    let (_, pretrained) = run(&config);
    config.model = format!("random:{}", config.model);
    let (_, first) = run(&config);
    let (_, second) = run(&config);
    assert_eq!(first.params.trainable, 8 * 2 * 2 * 32 + 32 * 13 + 13);
    assert_eq!(first.epochs[0].train_loss, second.epochs[0].train_loss);
    assert_eq!(first.best_dev, second.best_dev);
    assert_ne!(
        first.epochs[0].train_loss, pretrained.epochs[0].train_loss,
        "the checkpoint's weights were read"
    );
    config.model = "random:/no/such/dir".into();
    let dir = tempfile::tempdir().unwrap();
    let error = train(&config, &env(dir.path().to_path_buf())).unwrap_err();
    assert!(
        format!("{error:#}").contains("/no/such/dir/config.json"),
        "{error:#}"
    );
}
