//! One error type for the models crate: each variant names the file or tensor and what was expected.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("missing file {path} (a Hugging Face model dir needs config.json, model.safetensors and tokenizer.json)")]
    MissingFile { path: PathBuf },
    #[error("bad config {path}: {message}")]
    BadConfig { path: PathBuf, message: String },
    #[error("{path}: unknown model_type \"{model_type}\" (expected one of: bert, roberta, xlm-roberta, camembert, deberta-v2; DeBERTa v1 \"deberta\" is not supported)")]
    UnknownModelType { path: PathBuf, model_type: String },
    #[error("{path}: not a valid safetensors file: {message}")]
    BadWeights { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    DoesNotFit { path: PathBuf, message: String },
    #[error("{path}: tensor {name} is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor {name} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: sha256 is {found}, expected {expected} (corrupt or partial download; delete it to fetch again)")]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("cannot fetch model {name}: {message}")]
    Fetch { name: String, message: String },
    #[error("unknown model \"{name}\": expected a model dir path or one of: {known}")]
    UnknownModel { name: String, known: String },
    #[error("{0}")]
    Invalid(String),
}

/// The message a panic carried (`panic!` with a format gives a String, with a literal a &str).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}
