//! `ptv2 encode` end to end on the CPU: the JSON it writes holds transformers' token ids and hidden
//! states (the models crate's parity fixture, written by PyTorch), padding cut off per text.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

#[test]
fn encode_writes_the_hidden_states_transformers_computes() {
    let fixture = read_json(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/minilm_plain.json"),
    );
    let case = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "padded_batch")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("encode.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ptv2"));
    command
        .args(["encode", "--model", "minilm-l6", "--out"])
        .arg(&out);
    for text in case["texts"].as_array().unwrap() {
        command.args(["--text", text.as_str().unwrap()]);
    }
    let run = command.output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = read_json(&out);
    assert_eq!(written["layers"], 6);
    let inputs = written["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 3);
    for (i, input) in inputs.iter().enumerate() {
        let mask = case["attention_mask"][i].as_array().unwrap();
        let real = mask.iter().filter(|m| m.as_i64() == Some(1)).count();
        let expected_ids: Vec<&Value> = case["input_ids"][i].as_array().unwrap()[..real]
            .iter()
            .collect();
        let ids: Vec<&Value> = input["input_ids"].as_array().unwrap().iter().collect();
        assert_eq!(ids, expected_ids, "text {i}: token ids");
        let ours = floats(&input["last_hidden_state"]);
        let theirs = floats(&Value::Array(
            case["last_hidden_state"][i].as_array().unwrap()[..real].to_vec(),
        ));
        assert_eq!(ours.len(), real * 384);
        let diff = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff <= 1e-4, "text {i}: hidden states differ by {diff:.2e}");
    }
}
