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
        "cuda" => probe(Device::cuda(0), "cuda"),
        #[cfg(feature = "wgpu")]
        "wgpu" => probe(
            Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            "wgpu",
        ),
        #[cfg(feature = "vulkan")]
        "vulkan" => probe(
            Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
            "vulkan",
        ),
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

/// `device` once it has run one small op. A GPU backend without its driver panics on first use,
/// often on its own server thread (cudarc: "Unable to dynamically load the cuda shared library";
/// wgpu: no adapter), and the op then fails with a generic error: the first panic's message,
/// caught by a silent hook on whichever thread it happens, becomes one error line naming the
/// device and what is missing.
#[cfg(any(feature = "cuda", feature = "wgpu", feature = "vulkan"))]
fn probe(device: Device, name: &str) -> Result<Device, ModelError> {
    use std::sync::{Arc, Mutex};
    let first_panic: Arc<Mutex<Option<String>>> = Arc::default();
    let hook = std::panic::take_hook();
    let record = Arc::clone(&first_panic);
    std::panic::set_hook(Box::new(move |info| {
        let text = crate::error::panic_text(info.payload()).unwrap_or("the backend panicked");
        let mut first = record.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| text.lines().next().unwrap_or(text).to_string());
    }));
    let touched = std::panic::catch_unwind(|| {
        burn::tensor::Tensor::<1>::ones([1], &device)
            .into_data()
            .try_to_vec::<f32>()
    });
    std::panic::set_hook(hook);
    if matches!(&touched, Ok(Ok(one)) if one == &[1.0]) {
        return Ok(device);
    }
    let cause = first_panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    // cudarc's message lists 34 library names it tried; the first clause says what is missing.
    let cause = cause.map(|c| match c.split_once(" - searched for library names") {
        Some((missing, _)) => format!(
            "{missing} (the NVIDIA driver's libcuda.so.1; none here, or not on LD_LIBRARY_PATH)"
        ),
        None => c,
    });
    let cause = cause.unwrap_or_else(|| match touched {
        Ok(other) => format!("a first test op gave {other:?}, not [1.0]"),
        Err(_) => "the backend panicked".into(),
    });
    Err(ModelError::Invalid(format!(
        "device {name} cannot start: {cause}"
    )))
}

/// The GPU device the GPU tests run on: `PTV2_GPU_DEVICE` (`wgpu`, `vulkan`, `cuda`), else wgpu.
pub fn gpu_under_test() -> Result<Device, ModelError> {
    device_by_name(&std::env::var("PTV2_GPU_DEVICE").unwrap_or_else(|_| "wgpu".into()))
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
