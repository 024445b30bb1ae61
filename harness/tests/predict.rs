//! `ptv2 predict` on every family gives, for the dev examples, what the run's own evaluation
//! predicted (its dev predictions file), with well-formed scores beside each prediction.

use serde_json::{json, Value};

use ptv2_harness::run::tasks::{glue, ner, qa};

mod common;
use common::{data_dir, predict, small_run};

/// A small PT2 run of `task` (P = 4) in a temporary dir, and its run dir.
fn pt2_run(task: &str, max_len: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join(task);
    small_run(task, "pt2", 4, max_len, &run);
    (dir, run)
}

/// The first 16 of `examples` as `ptv2 predict` inputs (`input` makes each one's JSON), predicted
/// by `run`.
fn predict_first_16<T>(
    run: &std::path::Path,
    examples: &[T],
    input: impl Fn(&T) -> Value,
) -> Vec<Value> {
    let inputs: Vec<Value> = examples[..16].iter().map(input).collect();
    predict(run, &inputs)
}

/// A GLUE task's first 16 dev examples through `ptv2 predict` give the run's own dev predictions.
fn classification_predicts_what_evaluation_predicted(task: &str) {
    let (_dir, run) = pt2_run(task, "64");
    let spec = glue::TASKS.iter().find(|t| t.name == task).unwrap();
    let dev = glue::read_split(spec, &data_dir().join(spec.dev)).unwrap();
    let outputs = predict_first_16(&run, &dev, |e| match &e.inputs[0] {
        (text, Some(pair)) => json!({"text": text, "pair": pair}),
        (text, None) => json!({"text": text}),
    });
    let tsv = std::fs::read_to_string(run.join("dev_predictions.tsv")).unwrap();
    let expected: Vec<&str> = tsv
        .lines()
        .skip(1)
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect();
    let got: Vec<&str> = outputs
        .iter()
        .map(|o| o["label"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);
    for o in &outputs {
        let p: f64 = o["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((p - 1.0).abs() < 1e-4 && o["logits"].as_array().unwrap().len() == 2);
    }
}

#[test]
fn sentence_pairs_predict_what_evaluation_predicted() {
    classification_predicts_what_evaluation_predicted("rte");
}

#[test]
fn single_sentences_predict_what_evaluation_predicted() {
    classification_predicts_what_evaluation_predicted("sst2");
}

#[test]
fn ner_predicts_what_evaluation_predicted() {
    let (_dir, run) = pt2_run("wnut17", "64");
    let sentences = ner::read_conll(&data_dir().join("ner/wnut17/emerging.dev.conll")).unwrap();
    let outputs = predict_first_16(&run, &sentences, |s| json!({"tokens": s.words}));
    let conll = std::fs::read_to_string(run.join("dev_predictions.conll")).unwrap();
    let expected: Vec<Vec<String>> = conll
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.lines()
                .map(|l| l.rsplit(' ').next().unwrap().to_string())
                .collect()
        })
        .collect();
    let got: Vec<Vec<String>> = outputs
        .iter()
        .map(|o| serde_json::from_value(o["labels"].clone()).unwrap())
        .collect();
    assert_eq!(got, expected);
    for (o, s) in outputs.iter().zip(&sentences) {
        let joined = s.words.join(" ");
        for e in o["entities"].as_array().unwrap() {
            let (start, end) = (
                e["start"].as_u64().unwrap() as usize,
                e["end"].as_u64().unwrap() as usize,
            );
            let span: String = joined.chars().skip(start).take(end - start).collect();
            assert_eq!(span, e["text"].as_str().unwrap());
        }
    }
}

/// Extractive QA (SQuAD v1.1), 128-token windows.
#[test]
fn qa_predicts_what_evaluation_predicted() {
    let (_dir, run) = pt2_run("squad", "128");
    let dev = qa::read_squad(&data_dir().join("squad/v1.1/dev-v1.1.json")).unwrap();
    let outputs = predict_first_16(
        &run,
        &dev,
        |e| json!({"question": e.question, "context": e.context}),
    );
    let by_id: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("dev_predictions.json")).unwrap())
            .unwrap();
    for (o, e) in outputs.iter().zip(&dev) {
        assert_eq!(o["answer"], by_id[&e.id], "question {}", e.id);
        let (start, end) = (
            o["start"].as_u64().unwrap() as usize,
            o["end"].as_u64().unwrap() as usize,
        );
        let span: String = e.context.chars().skip(start).take(end - start).collect();
        assert_eq!(span, o["answer"].as_str().unwrap());
    }
}
