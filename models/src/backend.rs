//! The backend is chosen once, at run time: the pure-Rust `flex` CPU backend by default; CUDA,
//! wgpu (any GPU through Vulkan/Metal/DX12, or lavapipe's software Vulkan on a CPU) and Vulkan
//! (wgpu pinned to Vulkan, SPIR-V) when the crate is built with that feature.

use burn::tensor::Device;

use crate::error::ModelError;

/// Names accepted by `--device`.
pub const DEVICE_NAMES: &str =
    "cpu, cuda (with the cuda feature), wgpu (with the wgpu feature), vulkan (with the vulkan feature)";

/// The GPU features this build has, for the error that names a missing one.
fn built_features() -> Vec<&'static str> {
    let mut built = vec![];
    if cfg!(feature = "cuda") {
        built.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        built.push("wgpu");
    }
    if cfg!(feature = "vulkan") {
        built.push("vulkan");
    }
    built
}

/// An inference device by name. Training wraps it with `.autodiff()`.
pub fn device_by_name(name: &str) -> Result<Device, ModelError> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
        other => {
            let built = built_features();
            Err(ModelError::Invalid(format!(
                "unknown device \"{other}\": expected one of {DEVICE_NAMES}; this build has {}",
                if built.is_empty() {
                    "no GPU feature (build with -F ptv2-harness/wgpu, …)".to_string()
                } else {
                    format!("the {} feature", built.join(", "))
                }
            )))
        }
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
