//! Hugging Face Parquet exports (fixtures written with pyarrow by
//! tools/reference/make_parquet_fixtures.py) read into the same examples as the native formats.

use std::path::{Path, PathBuf};

use ptv2_harness::run::tasks::{load_task, ner, qa, superglue, Source};

mod common;
use common::data_dir;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parquet")
        .join(name)
}

/// Parquet exports whose train and dev are the same file.
fn parquet(file: PathBuf) -> Source {
    Source::Parquet {
        train: file.clone(),
        dev: file,
    }
}

#[test]
fn superglue_parquet_equals_jsonl() {
    for (task, dir) in [("copa", "COPA"), ("boolq", "BoolQ")] {
        let spec = superglue::TASKS.iter().find(|t| t.name == task).unwrap();
        let parquet_file = fixture(&format!("{task}.parquet"));
        let from_parquet = superglue::load(spec, &parquet(parquet_file)).unwrap().dev;
        let jsonl = data_dir().join(format!("superglue/{dir}/val.jsonl"));
        let from_jsonl = superglue::read_split(spec, &jsonl).unwrap();
        assert_eq!(from_parquet.len(), 20);
        for (a, b) in from_parquet.iter().zip(&from_jsonl) {
            assert_eq!((&a.inputs, &a.label), (&b.inputs, &b.label), "{task}");
        }
    }
}

#[test]
fn ner_parquet_equals_conll() {
    let spec = ner::TASKS.iter().find(|t| t.name == "wnut17").unwrap();
    let from_parquet = ner::load(spec, &parquet(fixture("wnut17.parquet")))
        .unwrap()
        .dev;
    let from_conll = ner::read_conll(&data_dir().join("ner/wnut17/emerging.dev.conll")).unwrap();
    assert_eq!(from_parquet.len(), 30);
    for (a, b) in from_parquet.iter().zip(&from_conll) {
        assert_eq!((&a.words, &a.tags), (&b.words, &b.tags));
    }
}

#[test]
fn squad_parquet_equals_json() {
    let spec = qa::TASKS.iter().find(|t| t.name == "squad").unwrap();
    let from_parquet = qa::load(spec, &parquet(fixture("squad.parquet")))
        .unwrap()
        .dev;
    let json = fixture("squad.json");
    let files = Source::Files {
        train: json.clone(),
        dev: json,
    };
    let from_json = qa::load(spec, &files).unwrap().dev;
    assert!(from_parquet.len() > 10);
    assert_eq!(from_parquet, from_json);
}

#[test]
fn parquet_tasks_load_and_score() {
    let sst2 = fixture("sst2.parquet").display().to_string();
    let task = load_task(
        &format!("parquet:sst2:{sst2},{sst2}"),
        Path::new("/nonexistent"),
    )
    .unwrap();
    assert_eq!((task.train_len(), task.dev_len()), (4, 4));
    let dir = tempfile::tempdir().unwrap();
    let predictions = dir.path().join("pred.txt");
    std::fs::write(&predictions, "1\n0\n1\n1\n").unwrap();
    assert_eq!(
        task.score_file(&predictions).unwrap()[0],
        ("accuracy".to_string(), 0.75)
    );
    let err = load_task(
        "parquet:sst2:/no/such.parquet,/no/such.parquet",
        Path::new("/nonexistent"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("missing file /no/such.parquet"), "{err}");
}
