//! What the integration tests share.

use std::path::PathBuf;

/// The benchmark data: `$PTV2_DATA`, else `shared/data` beside the checkout (as CI has it).
pub fn data_dir() -> PathBuf {
    std::env::var_os("PTV2_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}
