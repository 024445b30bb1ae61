//! Every Linear of the encoder (`dense`): f32 on flex in training through `fast_linear`, in
//! inference with the bias inside the gemm (`Kernels::fast_affine`), bf16 frozen weights on AMX
//! (`Kernels::amx_affine`), burn's `linear` elsewhere.
//!
//! `fast_linear` is burn's `linear` (the product, then the bias added) and burn's backward pass
//! for it, with each product written straight into a buffer of its own. Why: burn-flex 0.22's
//! matmul allocates its output through `FlexTensor::empty`, a zeroed `Vec<u8>` that
//! `Bytes::from_bytes_vec` then copies into a 64-byte aligned allocation: a memset and a copy of
//! every activation-sized product (the projections' outputs forward, their input gradients
//! backward), 7–8% of an FT train step at 128 tokens in `perf`. The gemm calls here are
//! burn-flex's own (`matmul_2d_strided`: the same operands, strides, threshold for threads and
//! scalars), so every sum is the same to the bit and the committed baselines do not move.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, DType, Dispatch, TensorMetadata};
use burn::nn::Linear;
use burn::tensor::Tensor;

use super::{amx_available, f32_tensor, gemm_into, gemm_matrix, on_flex, Kernels};

/// `linear` over every token of `[batch, seq, in]` as one `[batch·seq, in]` matmul: burn keeps
/// `batch` separate products when seq is a multiple of its row tile (128), packing the weight
/// again for each (measured 5–8% slower for MiniLM's shapes at 16 × 128 tokens). In inference
/// on flex the bias goes into the matmul (`fast_affine`) instead of a broadcast add over the
/// output (+5% evaluation throughput). Training keeps burn's order, product then bias
/// (`fast_linear`): the sum rounds differently, and PT at lr 0.1 turns last-bit differences into
/// other runs (smoke's PT: 71.1 → 65.8 dev accuracy), which would move the committed baselines.
pub fn dense(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [batch, seq, width] = x.dims();
    let rows = x.reshape([batch * seq, width]);
    let out = match crate::precision::half_weight(linear) {
        Some(half) => half_dense(linear, rows, half),
        None => f32_dense(linear, rows),
    };
    let out_width = out.dims()[1];
    out.reshape([batch, seq, out_width])
}

fn f32_dense(linear: &Linear, rows: Tensor<2>) -> Tensor<2> {
    match &linear.bias {
        Some(bias) if on_flex(&rows) && !rows.device().is_autodiff() => {
            Tensor::from_dispatch(<Dispatch as Kernels>::fast_affine(
                rows.into_dispatch(),
                linear.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        Some(bias) if on_flex(&rows) => {
            Tensor::from_dispatch(<Dispatch as LinearKernels>::fast_linear(
                rows.into_dispatch(),
                linear.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        _ => linear.forward(rows),
    }
}

/// A frozen projection stored in half precision (`Precision`): bf16 on flex with AMX through
/// `amx_affine` (sums and bias in f32); otherwise burn's product and bias in `half`, the result
/// back in f32. A LoRA update's low-rank path in f32 beside it, `x·A·B·scale`.
fn half_dense(linear: &Linear, rows: Tensor<2>, half: DType) -> Tensor<2> {
    let out = match &linear.bias {
        Some(bias) if half == DType::BF16 && on_flex(&rows) && amx_available() => {
            Tensor::from_dispatch(<Dispatch as Kernels>::amx_affine(
                rows.clone().into_dispatch(),
                linear.weight.base().into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        _ => {
            let mut out = rows.clone().cast(half).matmul(linear.weight.base());
            if let Some(bias) = &linear.bias {
                out = out + bias.val().unsqueeze();
            }
            out.cast(DType::F32)
        }
    };
    match linear.weight.adapter() {
        Some(lora) => {
            let low_rank = rows.matmul(lora.a.val()).matmul(lora.b.val());
            out + low_rank.mul_scalar(lora.scale)
        }
        None => out,
    }
}

/// The training Linear's two ops: burn's own elsewhere, `matmul` below on flex.
#[backend_extension(Autodiff, Flex)]
pub trait LinearKernels: Backend {
    /// `x · w + b` for x `[M, K]`, w `[K, N]`, b `[N]` as burn's `linear` computes it, the
    /// product then the bias; autodiff records burn's backward pass on `fast_matmul`.
    fn fast_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear(x, w, Some(b))
    }
    /// `lhs · rhs` for `[M, K]` and `[K, N]` of any strides.
    fn fast_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(lhs, rhs)
    }
}

impl LinearKernels for Flex {
    fn fast_linear(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
        match matmul(&x, &w) {
            Some(product) => {
                let width = product.layout().shape()[1];
                Flex::float_add(product, Flex::float_reshape(b, [1, width].into()))
            }
            None => Flex::linear(x, w, Some(b)),
        }
    }

    fn fast_matmul(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
        matmul(&lhs, &rhs).unwrap_or_else(|| Flex::float_matmul(lhs, rhs))
    }
}

impl<B: Backend + LinearKernels, C: CheckpointStrategy> LinearKernels for Autodiff<B, C> {
    fn fast_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        record::<B, C>(x, w, b)
    }
}

/// burn-flex's threshold (in multiply-adds) above which a product is spread over rayon's threads.
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// `lhs · rhs` for 2-D f32 operands of any non-negative strides, as burn-flex computes it, into
/// a buffer that is not zeroed first; `None` for anything else (other dtypes, ranks, strides).
fn matmul(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    if !gemm_matrix(lhs) || !gemm_matrix(rhs) {
        return None;
    }
    let (m, k, n) = (
        lhs.layout().shape()[0],
        lhs.layout().shape()[1],
        rhs.layout().shape()[1],
    );
    assert_eq!(
        rhs.layout().shape()[0],
        k,
        "matmul: inner dimensions must match"
    );
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    if k == 0 {
        out.resize(m * n, 0.0);
    } else {
        // SAFETY: both operands passed `gemm_matrix`; gemm writes all m × n outputs without
        // reading them (burn-flex's call: alpha 0, beta 1), so `out` is initialised when its
        // length is set.
        unsafe {
            gemm_into(out.as_mut_ptr(), lhs, rhs, false, PARALLEL_WORK);
            out.set_len(m * n);
        }
    }
    Some(f32_tensor(out, [m, n]))
}

/// burn's `LinearWithBias` backward pass (`burn-autodiff`'s `module.rs`) on `fast_matmul`: the
/// input gradient `grad · wᵀ`, the weight gradient `xᵀ · grad`, the bias gradient summed over
/// rows; each only where its parent is tracked (a frozen weight: the input gradient alone).
#[derive(Debug)]
struct LinearBackward;

impl<B: Backend + LinearKernels> Backward<B, 3> for LinearBackward {
    /// The input when the weight trains, the weight when the input needs its gradient.
    type State = (Option<FloatTensor<B>>, Option<FloatTensor<B>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        if let (Some(node), Some(weight)) = (x_node, weight) {
            let weight_t = B::float_swap_dims(weight, 0, 1);
            grads.register::<B>(node.id, B::fast_matmul(grad.clone(), weight_t));
        }
        if let (Some(node), Some(x)) = (weight_node, x) {
            let x_t = B::float_swap_dims(x, 0, 1);
            grads.register::<B>(node.id, B::fast_matmul(x_t, grad.clone()));
        }
        if let Some(node) = bias_node {
            let width = grad.shape()[1];
            let summed = B::float_sum_dim(grad, 0);
            grads.register::<B>(node.id, B::float_reshape(summed, [width].into()));
        }
    }
}

/// `x · w + b` for x `[M, K]` under autodiff: one node, its backward pass `LinearBackward`.
fn record<B: Backend + LinearKernels, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
    let (x, x_node) = x.into_parts();
    let (weight, weight_node) = weight.into_parts();
    let (bias, bias_node) = bias.into_parts();
    let prep = LinearBackward.prepare::<C>([x_node, weight_node, bias_node]);
    match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let state = (
                weight_tracked.then(|| x.clone()),
                x_tracked.then(|| weight.clone()),
            );
            prep.finish(state, B::fast_linear(x, weight, bias))
        }
        OpsKind::UnTracked(prep) => prep.finish(B::fast_linear(x, weight, bias)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tolerance};

    #[test]
    fn dense_trains_as_burns_linear_and_infers_within_float_noise() {
        use burn::module::Module;
        use burn::nn::LinearConfig;
        let device = Device::flex().autodiff();
        device.seed(5);
        // The second shape is above burn-flex's threshold for spreading a product over threads.
        for [batch, seq, width, out] in [[3, 7, 24, 40], [4, 64, 192, 256]] {
            let trained = LinearConfig::new(width, out).init(&device);
            let x = Tensor::<3>::random([batch, seq, width], Distribution::Default, &device)
                .require_grad();
            let weights = Tensor::<3>::random([batch, seq, out], Distribution::Default, &device);
            // Training (a weight that trains, then a frozen one): burn's own sums, to the bit.
            for linear in [trained.clone(), trained.clone().no_grad()] {
                let grads_of = |out: Tensor<3>| {
                    let grads = (out * weights.clone()).sum().backward();
                    let bias = linear.bias.as_ref().expect("a bias").val();
                    [
                        x.grad(&grads).map(|g| g.into_data()),
                        linear.weight.val().grad(&grads).map(|g| g.into_data()),
                        bias.grad(&grads).map(|g| g.into_data()),
                    ]
                };
                let (ours, theirs) = (dense(&linear, x.clone()), linear.forward(x.clone()));
                ours.to_data().assert_eq(&theirs.to_data(), true);
                let (ours, theirs) = (grads_of(ours), grads_of(theirs));
                assert!(ours[0].is_some(), "the input's gradient");
                assert_eq!(ours[1].is_some(), linear.weight.is_require_grad());
                for (a, b) in ours.iter().zip(&theirs) {
                    assert_eq!(a.is_some(), b.is_some());
                    if let (Some(a), Some(b)) = (a, b) {
                        a.assert_eq(b, true);
                    }
                }
            }
            // Inference: the bias inside the gemm.
            let plain = trained.valid();
            let x = x.inner();
            dense(&plain, x.clone())
                .into_data()
                .assert_approx_eq::<f32>(&plain.forward(x).into_data(), Tolerance::absolute(1e-4));
        }
    }
}
