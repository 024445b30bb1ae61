//! The backend is chosen once, at run time: the pure-Rust `flex` CPU backend by default, CUDA when
//! the crate is built with the `cuda` feature.

use burn::tensor::Device;

use crate::error::ModelError;

/// Names accepted by `--device`.
pub const DEVICE_NAMES: &str = "cpu, cuda (with the cuda feature)";

/// An inference device by name. Training wraps it with `.autodiff()`.
pub fn device_by_name(name: &str) -> Result<Device, ModelError> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        other => Err(ModelError::Invalid(format!(
            "unknown device \"{other}\": expected one of {DEVICE_NAMES}{}",
            if cfg!(feature = "cuda") {
                ""
            } else {
                "; this build has no cuda feature"
            }
        ))),
    }
}

/// Threads the CPU kernels run on: burn flex uses rayon's global pool, which takes
/// `RAYON_NUM_THREADS` when set to a positive number (e.g. by `--workers`), else one thread a core.
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A short description for reports: backend and thread count.
pub fn describe(device: &Device) -> String {
    format!("{device:?} ({} CPU threads)", cpu_threads())
}
