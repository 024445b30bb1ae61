//! Discrete prompting and the verbalizer head on a tiny random BertForMaskedLM (the committed
//! fixture of tools/reference/make_prompt_fixture.py): `--method prompt` trains nothing and
//! predicts what transformers predicts at the template's [MASK]; PT and FT train through the
//! verbalizer head and reload to the same scores.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use ptv2_harness::records::run_dir::RunDir;
use ptv2_harness::records::settings::RunSettings;
use ptv2_harness::run::setup::RunEnv;
use ptv2_harness::run::train::train;
use ptv2_harness::run::trained::evaluate_checkpoint;

mod common;
use common::predict;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prompt")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture().join("expected.json")).unwrap())
        .unwrap()
}

fn env(out: &Path) -> RunEnv {
    RunEnv {
        cache: ptv2_models::hub::default_cache_dir(),
        device: "cpu".into(),
        data_dir: fixture(),
        out: out.to_path_buf(),
        progress: None,
        verbose: false,
        stop_after: None,
    }
}

/// The fixture's sentiment task through the fixture model, with `extra` settings.
fn settings(extra: &[(&str, &str)]) -> anyhow::Result<RunSettings> {
    let model = fixture().join("model").display().to_string();
    let task = format!(
        "sst2:{},{}",
        fixture().join("train.tsv").display(),
        fixture().join("dev.tsv").display()
    );
    let mut values: Vec<(String, String)> = vec![
        ("model".into(), model),
        ("task".into(), task),
        ("max_len".into(), "16".into()),
        ("batch_size".into(), "4".into()),
    ];
    values.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    RunSettings::from_values(&values, "test")
}

#[test]
fn prompt_trains_nothing_and_predicts_what_transformers_predicts_at_the_mask() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("prompt");
    let s = settings(&[("method", "prompt"), ("seed", "3"), ("epochs", "5")]).unwrap();
    assert_eq!((s.lr, s.epochs, s.seed), (0.0, 1, 1), "zero-shot collapses");
    let metrics = train(&s, &env(&run)).unwrap();
    assert_eq!(metrics.params.trainable, 0);
    assert_eq!(metrics.steps, 0);
    assert_eq!(metrics.epochs.len(), 1);
    assert!(metrics.epochs[0].train_loss.is_finite() && metrics.epochs[0].train_loss > 0.0);

    // The dev accuracy is what transformers' logits give.
    let dev = expected()["dev"].as_array().unwrap().clone();
    let argmax = |l: &Value| (l[1].as_f64().unwrap() > l[0].as_f64().unwrap()) as u64;
    let right = dev
        .iter()
        .filter(|e| argmax(&e["logits"]) == e["label"].as_u64().unwrap())
        .count();
    let accuracy = right as f64 / dev.len() as f64;
    assert_eq!(metrics.best_dev[0].0, "accuracy");
    assert!((metrics.best_dev[0].1 - accuracy).abs() < 1e-9);

    // `ptv2 predict` gives transformers' label-word logits, the long sentence cut before the mask.
    let inputs: Vec<Value> = dev.iter().map(|e| json!({"text": e["text"]})).collect();
    let outputs = predict(&run, &inputs);
    let mut worst = 0.0f64;
    for (out, want) in outputs.iter().zip(&dev) {
        for c in 0..2 {
            let got = out["logits"][c].as_f64().unwrap();
            worst = worst.max((got - want["logits"][c].as_f64().unwrap()).abs());
        }
    }
    eprintln!("prompt logits vs transformers: max |diff| {worst:.2e}");
    assert!(worst < 1e-4, "max |diff| {worst}");

    // Reloaded (an empty checkpoint: nothing trained), it scores the same.
    let (_, scores) = evaluate_checkpoint(&run, &env(&run)).unwrap();
    assert_eq!(scores, metrics.best_dev);
}

/// A trained method through the verbalizer head: what it trains, what its checkpoint holds, and
/// that the reloaded run scores what training scored.
fn trains_through_the_verbalizer(method: &str, lr: &str, prompt_len: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join(method);
    let s = settings(&[
        ("method", method),
        ("head", "verbalizer"),
        ("lr", lr),
        ("epochs", "2"),
        ("prompt_len", prompt_len),
    ])
    .unwrap();
    let metrics = train(&s, &env(&run)).unwrap();
    assert!(metrics.params.trainable > 0 && metrics.steps == 6);
    let (_, scores) = evaluate_checkpoint(&run, &env(&run)).unwrap();
    assert_eq!(scores, metrics.best_dev, "{method}: reloaded scores");
    let bytes = std::fs::read(RunDir(run).file("checkpoint.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = tensors.names().into_iter().map(String::from).collect();
    names.sort();
    names
}

#[test]
fn pt_trains_its_prompts_and_reads_the_frozen_mlm_head() {
    let names = trains_through_the_verbalizer("pt", "1e-1", "3");
    assert_eq!(names, ["prompt.embedding"], "PT keeps only its prompts");
}

#[test]
fn ft_trains_the_mlm_head_with_everything_else() {
    let names = trains_through_the_verbalizer("ft", "1e-3", "0");
    assert!(
        names.iter().any(|n| n == "head.mlm.dense.weight"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("head.classifier")));
}

#[test]
fn prompting_errors_name_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    // The embedded MiniLM-L6 is a sentence-embedding model: no masked-LM head.
    let mut s = settings(&[("method", "prompt")]).unwrap();
    s.model = "minilm-l6@2".into();
    let error = format!("{:#}", train(&s, &env(&dir.path().join("a"))).unwrap_err());
    assert!(error.contains("no masked-LM head"), "{error}");
    // A template the file does not have.
    let s = settings(&[("method", "prompt"), ("template", "mine")]).unwrap();
    let error = format!("{:#}", train(&s, &env(&dir.path().join("b"))).unwrap_err());
    assert!(
        error.contains(
            "no template \"mine\" for task sst2 in experiments/templates.toml (it has lm-bff)"
        ),
        "{error}"
    );
    // Training methods still need a learning rate.
    let error = format!("{:#}", settings(&[("method", "pt2")]).unwrap_err());
    assert!(error.contains("no value for \"lr\""), "{error}");
}

#[test]
fn a_served_prompt_run_answers_what_predict_gives() {
    use ptv2_harness::serving::serve::{http_request, ServeProcess};
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("prompt");
    train(&settings(&[("method", "prompt")]).unwrap(), &env(&run)).unwrap();
    let inputs = vec![json!({"text": "a great film"}), json!({"text": "dull"})];
    let alone = predict(&run, &inputs);
    let exe = Path::new(env!("CARGO_BIN_EXE_ptv2"));
    let args = [
        "--checkpoints",
        run.to_str().unwrap(),
        "--max-wait-ms",
        "10",
    ]
    .map(String::from);
    let mut server = ServeProcess::start(exe, &args, std::process::Stdio::inherit()).unwrap();
    // A task read by path is served under its setting's name.
    let task = RunDir(run.clone()).settings().unwrap().task;
    let body = json!({"task": task, "inputs": inputs}).to_string();
    let (status, text) = http_request(&server.address, "POST", "/v1/predict", &body).unwrap();
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    for (served, own) in answer["outputs"].as_array().unwrap().iter().zip(&alone) {
        assert_eq!(served["label"], own["label"]);
        for c in 0..2 {
            let (a, b) = (served["logits"][c].as_f64(), own["logits"][c].as_f64());
            assert!((a.unwrap() - b.unwrap()).abs() < 1e-4, "{served} vs {own}");
        }
    }
    assert!(server.stop().unwrap().success());
}
