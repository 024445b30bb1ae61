//! ptv2's metrics against golden values computed once with scikit-learn, scipy, seqeval and the
//! official SQuAD v1.1 script (`tools/reference/make_metric_fixtures.py`), and `ptv2 score`'s file
//! readers on the same fixtures.

use std::path::{Path, PathBuf};

use serde_json::Value;

use ptv2_harness::records::metrics;
use ptv2_harness::run::tasks::load_task;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics")
}

fn golden(key: &str) -> f64 {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden.json")).unwrap())
            .unwrap();
    golden[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no golden {key}"))
}

fn numbers(name: &str) -> Vec<f64> {
    std::fs::read_to_string(fixtures().join(name))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

fn classes(name: &str) -> Vec<usize> {
    numbers(name).into_iter().map(|x| x as usize).collect()
}

fn close(ours: f64, key: &str) {
    let theirs = golden(key);
    assert!(
        (ours - theirs).abs() < 1e-9,
        "{key}: ours {ours}, reference {theirs}"
    );
}

#[test]
fn classification_and_regression_metrics_match_sklearn_and_scipy() {
    let (gold, pred) = (classes("labels_gold.txt"), classes("labels_pred.txt"));
    close(metrics::accuracy(&pred, &gold), "accuracy");
    close(metrics::f1_for_class(&pred, &gold, 1), "f1_binary");
    close(metrics::matthews(&pred, &gold), "matthews");
    let (gold3, pred3) = (classes("labels3_gold.txt"), classes("labels3_pred.txt"));
    close(metrics::macro_f1(&pred3, &gold3, 3), "macro_f1_3");
    close(metrics::accuracy(&pred3, &gold3), "accuracy_3");
    let (values, noisy) = (numbers("values_gold.txt"), numbers("values_pred.txt"));
    close(metrics::pearson(&noisy, &values), "pearson");
    close(metrics::spearman(&noisy, &values), "spearman");
}

fn scores_of(task: &str, predictions: &str) -> Vec<(String, f64)> {
    let task = load_task(task, Path::new("/nonexistent")).unwrap();
    task.score_file(&fixtures().join(predictions)).unwrap()
}

fn get(scores: &[(String, f64)], name: &str) -> f64 {
    scores.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn ner_score_file_matches_seqeval() {
    let gold = fixtures().join("wnut17_gold.conll").display().to_string();
    let scores = scores_of(&format!("conll:{gold},{gold}"), "wnut17_pred.conll");
    close(get(&scores, "f1"), "seqeval_f1");
    close(get(&scores, "precision"), "seqeval_precision");
    close(get(&scores, "recall"), "seqeval_recall");
}

#[test]
fn squad_score_file_matches_the_official_script() {
    let gold = fixtures().join("squad_gold.json").display().to_string();
    let scores = scores_of(&format!("squad:{gold},{gold}"), "squad_pred.json");
    // The official script reports percent.
    close(100.0 * get(&scores, "f1"), "squad_f1");
    close(100.0 * get(&scores, "exact_match"), "squad_exact_match");
}

#[test]
fn score_file_errors_name_file_and_line() {
    let gold = fixtures().join("wnut17_gold.conll").display().to_string();
    let task = load_task(&format!("conll:{gold},{gold}"), Path::new("/nonexistent")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("pred.conll");
    std::fs::write(&bad, "Hello O O\nworld O Q-PER\n").unwrap();
    let err = task.score_file(&bad).unwrap_err().to_string();
    assert!(
        err.contains("pred.conll:2") && err.contains("Q-PER"),
        "{err}"
    );
    std::fs::write(&bad, "Hello O O\n").unwrap();
    let err = task.score_file(&bad).unwrap_err().to_string();
    assert!(err.contains("sentences"), "{err}");
}
