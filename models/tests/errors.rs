//! Bad model dirs give one clear error naming the file or tensor, never a panic.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use ptv2_models::encoder::load::{load_encoder, ModelDir};
use ptv2_models::hub::{fetch_embedded, EMBEDDED_MODELS};
use ptv2_models::ModelError;

fn tiny_roberta() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_roberta")
}

/// A copy of the tiny RoBERTa dir whose config.json has one key replaced.
fn copy_with_config(dir: &Path, key: &str, value: serde_json::Value) {
    std::fs::copy(
        tiny_roberta().join("model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny_roberta().join("config.json")).unwrap())
            .unwrap();
    config[key] = value;
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

fn load(dir: &Path) -> ModelError {
    load_encoder(&ModelDir::new(dir), &Device::flex()).expect_err("loading should fail")
}

#[test]
fn missing_weights_file_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        tiny_roberta().join("config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    let err = load(tmp.path());
    assert!(matches!(err, ModelError::MissingFile { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&tmp.path().join("model.safetensors").display().to_string()),
        "{err}"
    );
}

#[test]
fn truncated_weights_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    copy_with_config(tmp.path(), "model_type", "roberta".into());
    let bytes = std::fs::read(tmp.path().join("model.safetensors")).unwrap();
    std::fs::write(
        tmp.path().join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let err = load(tmp.path());
    assert!(matches!(err, ModelError::BadWeights { .. }), "{err}");
    assert!(
        err.to_string().contains("not a valid safetensors file"),
        "{err}"
    );
}

#[test]
fn unknown_model_type_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_with_config(tmp.path(), "model_type", "gpt2".into());
    let err = load(tmp.path());
    assert!(
        err.to_string().contains("unknown model_type \"gpt2\""),
        "{err}"
    );
}

#[test]
fn wrong_shape_names_tensor_expected_and_found() {
    let tmp = tempfile::tempdir().unwrap();
    copy_with_config(tmp.path(), "intermediate_size", 48.into());
    let err = load(tmp.path());
    let text = err.to_string();
    assert!(matches!(err, ModelError::WrongShape { .. }), "{text}");
    assert!(
        text.contains("encoder.layer.0.intermediate.dense.weight")
            && text.contains("[48, 32]")
            && text.contains("[64, 32]"),
        "{text}"
    );
}

#[test]
fn missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_with_config(tmp.path(), "num_hidden_layers", 3.into());
    let err = load(tmp.path());
    assert!(matches!(err, ModelError::MissingTensor { .. }), "{err}");
    assert!(err.to_string().contains("encoder.layer.2."), "{err}");
}

#[test]
fn corrupt_cached_embedded_model_fails_its_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let model = &EMBEDDED_MODELS[0];
    let dir = tmp.path().join("models").join(model.name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"not the weights").unwrap();
    let err = fetch_embedded(model, tmp.path()).unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("sha256"), "{err}");
}

/// A copy of the tiny DeBERTa-v2 dir whose config.json has one key replaced.
fn deberta_with_config(dir: &Path, key: &str, value: serde_json::Value) -> ModelError {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_deberta_v2");
    std::fs::copy(
        source.join("model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    let text = std::fs::read_to_string(source.join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config[key] = value;
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    load(dir)
}

/// What ptv2 does not build of DeBERTa is refused by name, with what it expected.
#[test]
fn deberta_options_not_built_are_named() {
    let cases: [(&str, serde_json::Value, &str); 5] = [
        (
            "model_type",
            "deberta".into(),
            "DeBERTa v1 \"deberta\" is not supported",
        ),
        ("share_att_key", false.into(), "share_att_key false"),
        ("pos_att_type", "p2c|c2p|p2p".into(), "pos_att_type \"p2p\""),
        (
            "embedding_size",
            16.into(),
            "embedding_size 16 differs from hidden_size 32",
        ),
        (
            "conv_act",
            "relu".into(),
            "conv_act \"relu\" is not supported",
        ),
    ];
    for (key, value, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let err = deberta_with_config(tmp.path(), key, value).to_string();
        assert!(err.contains(expected), "{key}: {err}");
        assert!(err.contains("config.json"), "{key}: {err}");
    }
    // A missing relative table is named in the checkpoint's own words.
    let tmp = tempfile::tempdir().unwrap();
    let err = deberta_with_config(tmp.path(), "position_buckets", 16.into()).to_string();
    assert!(
        err.contains("deberta.encoder.rel_embeddings.weight"),
        "{err}"
    );
}
