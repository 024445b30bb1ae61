//! Where benchmark files live: `--data DIR`, else `$PTV2_DATA`, else `../shared/data`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub const DEFAULT_DATA_DIR: &str = "../shared/data";

pub fn resolve_data_dir(flag: Option<&Path>) -> Result<PathBuf> {
    let dir = match flag {
        Some(dir) => dir.to_path_buf(),
        None => std::env::var_os("PTV2_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    };
    if !dir.is_dir() {
        bail!(
            "data dir {} does not exist: pass --data DIR or set PTV2_DATA to the folder holding glue/, superglue/, ner/, squad/",
            dir.display()
        );
    }
    Ok(dir)
}

/// A data file that must exist, with an error naming the path and the task.
pub fn require_file(dir: &Path, relative: &str, task: &str) -> Result<PathBuf> {
    let path = dir.join(relative);
    if !path.is_file() {
        bail!("task {task}: missing file {}", path.display());
    }
    Ok(path)
}

/// A file's text, or an error naming it.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A file's name (no dirs), for example ids like `train.tsv:12`.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string()
}
