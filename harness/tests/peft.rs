//! PEFT interop against adapters PEFT itself saved (tools/reference/make_peft_fixtures.py):
//! imported PREFIX_TUNING, PROMPT_TUNING and LORA adapters predict PEFT's logits within 1e-4; exporting an imported
//! adapter writes the tensors PEFT saved, bit for bit, and the config fields PEFT reads; a ptv2
//! run survives export + import with the same predictions; what does not fit is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use ptv2_harness::records::io::read_tensors;
use ptv2_harness::serving::peft::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};

mod common;
use common::{data_dir, predict, small_run};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peft")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

/// Run `ptv2 ARGS --data …`; its stderr, and whether it succeeded.
fn ptv2(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args(args)
        .arg("--data")
        .arg(data_dir())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

fn import(adapter: &Path, task: &str, out: &Path) -> (bool, String) {
    ptv2(&[
        "import-peft",
        "--adapter",
        adapter.to_str().unwrap(),
        "--model",
        "minilm-l6",
        "--task",
        task,
        "--out",
        out.to_str().unwrap(),
    ])
}

fn export(run: &Path, out: &Path) -> (bool, String) {
    ptv2(&[
        "export-peft",
        "--checkpoint",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

/// A run dir's settings.
fn config_json(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap()
}

fn config(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(ADAPTER_CONFIG)).unwrap()).unwrap()
}

#[test]
fn imported_prefix_predicts_peft_logits_and_exports_what_peft_saved() {
    let dir = tempfile::tempdir().unwrap();
    let expected = expected();
    let inputs: Vec<Value> = expected["pairs"].as_array().unwrap().clone();
    for (kind, method) in [
        ("prefix_seq_cls", "pt2"),
        ("prefix_projection_seq_cls", "prefix"),
        ("prompt_seq_cls", "pt"),
        ("ptuning_lstm_seq_cls", "ptuning"),
        ("ptuning_mlp_seq_cls", "ptuning"),
        ("lora_seq_cls", "lora"),
    ] {
        let adapter = fixtures().join(kind);
        let run = dir.path().join(format!("{kind}-run"));
        let (ok, stderr) = import(&adapter, "rte", &run);
        assert!(ok, "{kind} import: {stderr}");
        assert_eq!(config_json(&run)["method"], method, "{kind}: imported as");

        let outputs = predict(&run, &inputs);
        let mut gap = 0.0f64;
        for (output, logits) in outputs
            .iter()
            .zip(expected[kind]["logits"].as_array().unwrap())
        {
            for (ours, peft) in output["logits"]
                .as_array()
                .unwrap()
                .iter()
                .zip(logits.as_array().unwrap())
            {
                gap = gap.max((ours.as_f64().unwrap() - peft.as_f64().unwrap()).abs());
            }
        }
        eprintln!("{kind}: largest logit gap to PEFT {gap:.2e}");
        assert!(gap < 1e-4, "{kind}: logits differ from PEFT's by {gap}");

        let exported = dir.path().join(format!("{kind}-export"));
        let (ok, stderr) = export(&run, &exported);
        assert!(ok, "{kind} export: {stderr}");
        assert_eq!(
            read_tensors(&exported.join(ADAPTER_WEIGHTS)).unwrap(),
            read_tensors(&adapter.join(ADAPTER_WEIGHTS)).unwrap(),
            "{kind}: exported tensors"
        );
        assert_same_config(kind, &config(&exported), &config(&adapter));
    }
}

/// An exported adapter_config.json says what PEFT's says, key by key.
fn assert_same_config(kind: &str, ours: &Value, peft: &Value) {
    for (key, value) in peft.as_object().unwrap() {
        if key == "target_modules" {
            // PEFT keeps them as a set: any order.
            let sorted = |v: &Value| {
                let mut names: Vec<String> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.to_string())
                    .collect();
                names.sort();
                names
            };
            assert_eq!(sorted(&ours[key]), sorted(value), "{kind}: target_modules");
        } else if key != "base_model_name_or_path" {
            assert_eq!(&ours[key], value, "{kind}: adapter_config.json \"{key}\"");
        }
    }
}

#[test]
fn a_ptv2_run_survives_export_and_import_and_misfits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("rte");
    small_run("rte", "pt2", 4, "64", &run);
    let adapter = dir.path().join("adapter");
    let (ok, stderr) = export(&run, &adapter);
    assert!(ok, "export: {stderr}");
    let back = dir.path().join("back");
    // The small run used two layers: the adapter fits minilm-l6@2, not the whole model.
    let (ok, stderr) = import(&adapter, "rte", &back);
    assert!(!ok && stderr.contains("does not fit"), "{stderr}");
    assert!(!back.join("checkpoint.safetensors").exists());
    let (ok, stderr) = ptv2(&[
        "import-peft",
        "--adapter",
        adapter.to_str().unwrap(),
        "--model",
        "minilm-l6@2",
        "--task",
        "rte",
        "--max-len",
        "64",
        "--out",
        back.to_str().unwrap(),
    ]);
    assert!(ok, "import: {stderr}");
    let inputs: Vec<Value> = expected()["pairs"].as_array().unwrap().clone();
    assert_eq!(predict(&run, &inputs), predict(&back, &inputs));

    // A sequence-classification adapter is not an NER head; an FT run has no adapter.
    let (ok, stderr) = import(
        &fixtures().join("prefix_seq_cls"),
        "wnut17",
        &dir.path().join("x"),
    );
    assert!(!ok && stderr.contains("task_type"), "{stderr}");
    let ft = dir.path().join("ft");
    small_run("rte", "ft", 4, "64", &ft);
    let (ok, stderr) = export(&ft, &dir.path().join("y"));
    assert!(!ok && stderr.contains("no PEFT adapter"), "{stderr}");
}

#[test]
fn lora_adapters_that_do_not_fit_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // Six layers of factors, a two-layer model.
    let (ok, stderr) = ptv2(&[
        "import-peft",
        "--adapter",
        fixtures().join("lora_seq_cls").to_str().unwrap(),
        "--model",
        "minilm-l6@2",
        "--task",
        "rte",
        "--out",
        dir.path().join("two").to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("layer.2.attention.self_attn.query.weight.lora.a has no place"),
        "{stderr}"
    );
    // rsLoRA scales by alpha/√r, not alpha/r: refused, naming the key.
    let rslora = dir.path().join("rslora");
    std::fs::create_dir_all(&rslora).unwrap();
    let mut fields = config(&fixtures().join("lora_seq_cls"));
    fields["use_rslora"] = Value::Bool(true);
    std::fs::write(rslora.join(ADAPTER_CONFIG), fields.to_string()).unwrap();
    std::fs::copy(
        fixtures().join("lora_seq_cls").join(ADAPTER_WEIGHTS),
        rslora.join(ADAPTER_WEIGHTS),
    )
    .unwrap();
    let (ok, stderr) = import(&rslora, "rte", &dir.path().join("r"));
    assert!(!ok && stderr.contains("\"use_rslora\" is true"), "{stderr}");
}
