//! CPU kernels ptv2 carries for burn's flex backend: the exact (erf) GELU, the attention softmax,
//! LayerNorm and dropout, forward and backward, vectorised and spread over rayon's threads.
//!
//! Why: burn-flex 0.22 computes GELU with scalar libm `erff`/`expf` on one thread (~20% of a PT2
//! train step in `perf`), and under autodiff splits softmax and LayerNorm into 5 and 9 recorded
//! ops that keep several activation-sized tensors each; a float dropout mask was kept per dropout.
//! These kernels are a burn backend extension (`Kernels`): implemented for `Flex`, with their own
//! backward passes for `Autodiff<Flex>`; every other backend (CUDA) keeps burn's ops (the
//! wrappers below choose by device). An element-wise kernel writes in place when its input's
//! storage is unshared (inference, and ops that keep nothing for their backward pass). The
//! attention itself is one fused op: `attention.rs`.
//!
//! The math: erf is Abramowitz & Stegun 7.1.26 for |z| ≥ 1 (the formula PyTorch's vectorised CPU
//! erf uses) and its Taylor series below; exp is Cephes' `expf` polynomial (measured bounds in the
//! tests). Each loop is compiled three times — AVX-512, AVX2 + FMA, baseline — and the widest the
//! CPU has is picked at run time.

pub mod adamw;
#[cfg(target_arch = "x86_64")]
pub mod amx;
pub mod attention;
pub mod linear;
pub mod mask;

use std::sync::OnceLock;

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::ops::{ActivationOps, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, DType, Dispatch, TensorMetadata};
use burn::nn::LayerNorm;
use burn::tensor::{Bytes, Device, Shape, Tensor};
use rayon::prelude::*;

/// The exact GELU, `x·Φ(x)`, on any backend: ptv2's kernel on flex, burn's elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x) {
        return burn::tensor::activation::gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as Kernels>::fast_gelu(x.into_dispatch()))
}

/// Softmax over the last dimension on any backend: ptv2's kernel on flex, burn's elsewhere.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x) {
        return burn::tensor::activation::softmax(x, D - 1);
    }
    Tensor::from_dispatch(<Dispatch as Kernels>::fast_softmax(x.into_dispatch()))
}

/// HF's LayerNorm over the last dimension (biased variance, `eps` inside the square root) with
/// `norm`'s parameters: ptv2's kernel on flex (its backward keeps only the input), burn's elsewhere.
pub fn layer_norm<const D: usize>(x: Tensor<D>, norm: &LayerNorm, eps: f64) -> Tensor<D> {
    match &norm.beta {
        Some(beta) if on_flex(&x) => Tensor::from_dispatch(<Dispatch as Kernels>::fast_layer_norm(
            x.into_dispatch(),
            norm.gamma.val().into_dispatch(),
            beta.val().into_dispatch(),
            eps,
        )),
        _ => norm.forward(x),
    }
}

/// `x` times `mask::keep_mask(seed, n, keep)` on flex, the mask made on the fly in both passes:
/// nothing but the seed is kept for the backward pass (a kept float mask was batch × heads × seq²
/// numbers per layer for the attention probabilities).
pub(crate) fn seeded_dropout<const D: usize>(x: Tensor<D>, seed: u64, keep: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as Kernels>::fast_dropout(
        x.into_dispatch(),
        seed,
        keep,
    ))
}

/// The AMX panels of a frozen bf16 weight `[k, n]` (contiguous): w, or wᵀ for the input gradient.
#[cfg(target_arch = "x86_64")]
fn packed_weight(w: &FlexTensor, transposed: bool) -> std::sync::Arc<amx::Packed> {
    let weights = w.storage::<burn::tensor::bf16>();
    let [k, n] = [w.layout().shape()[0], w.layout().shape()[1]];
    let id = amx::WeightId {
        address: weights.as_ptr() as usize,
        shape: [k, n],
        transposed,
    };
    amx::packed_once(
        id,
        || Box::new(w.clone()),
        || match transposed {
            // wᵀ: element (r, c) of the right operand is w[c][r].
            true => amx::Packed::new(n, k, |r, c| weights[c * n + r].to_bits()),
            false => amx::Packed::new(k, n, |r, c| weights[r * n + c].to_bits()),
        },
    )
}

/// AMX-BF16 tiles for bf16 weights on this CPU (`amx.rs`); elsewhere burn's bf16 product.
pub fn amx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return amx::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

pub(crate) fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    x.device().inner() == Device::flex()
}

/// The backend extension. The default bodies are burn's own ops; flex overrides them with
/// ptv2's kernels, and autodiff records one node per call whose backward pass calls the
/// `_backward` kernel (dropout: itself, with the same seed).
#[backend_extension(Autodiff, Flex)]
pub trait Kernels: Backend {
    fn fast_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }
    /// `x · w + b` for x `[M, K]`, w `[K, N]`, b `[N]` (flex: one gemm onto the bias; the default,
    /// which autodiff takes, is burn's linear).
    fn fast_affine(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear(x, w, Some(b))
    }
    /// `x · w + b` in f32 for x f32 `[M, K]` and a frozen bf16 w `[K, N]`, b `[N]`: the operands
    /// rounded to bf16, the sums in f32, on AMX tiles (`amx.rs`; flex only, where
    /// `amx::available()`). Autodiff differentiates `x` only: a bf16 weight is frozen.
    fn amx_affine(
        _x: FloatTensor<Self>,
        _w: FloatTensor<Self>,
        _b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        panic!("amx_affine runs on flex only")
    }
    /// `grad · wᵀ` for grad f32 `[M, N]` and the bf16 w `[K, N]` of `amx_affine`: its input gradient.
    fn amx_affine_input_grad(_grad: FloatTensor<Self>, _w: FloatTensor<Self>) -> FloatTensor<Self> {
        panic!("amx_affine runs on flex only")
    }
    /// `x` times `mask::keep_mask(seed, n, keep)`, elementwise in `x`'s logical order.
    fn fast_dropout(x: FloatTensor<Self>, seed: u64, keep: f64) -> FloatTensor<Self>;
    /// `grad · GELU'(x)`
    fn fast_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_backward(x, grad)
    }
    fn fast_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = x.shape().num_dims() - 1;
        Self::softmax(x, last)
    }
    /// `y ⊙ (grad − Σ grad ⊙ y)` along the last dimension, from the softmax output `y`.
    fn fast_softmax_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        softmax_backward_composed::<Self>(y, grad)
    }
    fn fast_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        Self::layer_norm(x, gamma, Some(beta), eps)
    }
    /// `(x − mean) / √(var + eps)` along the last dimension: the LayerNorm without its affine part.
    fn fast_normalize(x: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        let ones = Self::float_ones(
            [*x.shape().last().expect("a vector")].into(),
            &x.device(),
            x.dtype().into(),
        );
        Self::layer_norm(x, ones, None, eps)
    }
    /// The input's gradient through LayerNorm, from the input (its statistics are recomputed):
    /// rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = grad · gamma.
    fn fast_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        layer_norm_backward_composed::<Self>(x, gamma, grad, eps)
    }
}

/// Softmax's backward pass in burn's ops (for other dtypes than f32).
fn softmax_backward_composed<B: Backend>(
    y: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let last = y.shape().num_dims() - 1;
    let dot = B::float_sum_dim(B::float_mul(grad.clone(), y.clone()), last);
    B::float_mul(y, B::float_sub(grad, dot))
}

/// LayerNorm's input gradient in burn's ops (for other dtypes than f32).
fn layer_norm_backward_composed<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    grad: FloatTensor<B>,
    eps: f64,
) -> FloatTensor<B> {
    let shape = x.shape();
    let last = shape.num_dims() - 1;
    let mut gamma_shape = vec![1; last];
    gamma_shape.push(shape[last]);
    let centered = B::float_sub(x.clone(), B::float_mean_dim(x, last));
    let var = B::float_mean_dim(B::float_mul(centered.clone(), centered.clone()), last);
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(var, eps.into())));
    let xhat = B::float_mul(centered, rstd.clone());
    let dxhat = B::float_mul(grad, B::float_reshape(gamma, gamma_shape.into()));
    let mean_dxhat = B::float_mean_dim(dxhat.clone(), last);
    let mean_dot = B::float_mean_dim(B::float_mul(dxhat.clone(), xhat.clone()), last);
    let inner = B::float_sub(
        B::float_sub(dxhat, mean_dxhat),
        B::float_mul(xhat, mean_dot),
    );
    B::float_mul(rstd, inner)
}

impl Kernels for Flex {
    /// The output starts as the bias in every row and gemm adds `x · w` to it (burn's linear
    /// writes the product, then adds a broadcast bias in a second pass over the output).
    fn fast_affine(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
        let b = contiguous(b);
        if b.dtype() != DType::F32 || !gemm_matrix(&x) || !gemm_matrix(&w) {
            return Flex::linear(x, w, Some(b));
        }
        let (x_shape, w_shape) = (x.layout().shape(), w.layout().shape());
        let (m, k, n) = (x_shape[0], x_shape[1], w_shape[1]);
        assert_eq!(w_shape[0], k, "linear: input width {k}, weight {w_shape:?}");
        let bias = &b.storage::<f32>()[b.layout().start_offset()..][..n];
        let mut out = Vec::with_capacity(m * n);
        (0..m).for_each(|_| out.extend_from_slice(bias));
        // SAFETY: both operands passed `gemm_matrix`; `out` holds m × n values, the bias rows.
        unsafe { gemm_into(out.as_mut_ptr(), &x, &w, true, 128 * 128 * 128) };
        f32_tensor(out, [m, n])
    }

    #[cfg(target_arch = "x86_64")]
    fn amx_affine(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
        let (x, w, b) = (contiguous(x), contiguous(w), contiguous(b));
        let (m, k, n) = (
            x.layout().shape()[0],
            x.layout().shape()[1],
            w.layout().shape()[1],
        );
        let packed = packed_weight(&w, false);
        let bias: Vec<f32> = b.storage::<burn::tensor::bf16>()[..n]
            .iter()
            .map(|v| v.to_f32())
            .collect();
        let rows = amx::BfRows::from_f32(&x.storage::<f32>()[..m * k], m, k);
        let out = amx::matmul(&rows, &packed, Some(&bias), m, n);
        f32_tensor(out, [m, n])
    }

    #[cfg(target_arch = "x86_64")]
    fn amx_affine_input_grad(grad: FlexTensor, w: FlexTensor) -> FlexTensor {
        let (grad, w) = (contiguous(grad), contiguous(w));
        let (m, k, n) = (
            grad.layout().shape()[0],
            w.layout().shape()[0],
            w.layout().shape()[1],
        );
        let packed = packed_weight(&w, true);
        let rows = amx::BfRows::from_f32(&grad.storage::<f32>()[..m * n], m, n);
        let out = amx::matmul(&rows, &packed, None, m, k);
        f32_tensor(out, [m, k])
    }

    fn fast_dropout(x: FlexTensor, seed: u64, keep: f64) -> FlexTensor {
        let x = contiguous(x);
        let Some(n) = contiguous_f32(&x) else {
            // Other dtypes: the same mask as a tensor.
            let shape = x.shape();
            let mask = mask::keep_mask(seed, shape.num_elements(), keep);
            let mask = FlexTensor::from_data(burn::tensor::TensorData::new(mask, shape));
            return Flex::float_mul(x.clone(), Flex::float_cast(mask, x.dtype().into()));
        };
        let (threshold, scale) = mask::threshold_and_scale(keep);
        // Chunks of an even length, so each starts at a whole pair of the mask's stream.
        map_into(x, n, ELEMENTS_PER_TASK, |i, s, o| {
            let first_pair = (i * ELEMENTS_PER_TASK / 2) as u64;
            dispatch!(dropout(s, o, seed, first_pair, threshold, scale))
        })
    }

    fn fast_gelu(x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        match contiguous_f32(&x) {
            Some(n) => map_into(x, n, ELEMENTS_PER_TASK, |_, src, dst| {
                dispatch!(gelu_forward(src, dst))
            }),
            None => Flex::gelu(x),
        }
    }

    fn fast_gelu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        match (contiguous_f32(&x), contiguous_f32(&grad)) {
            (Some(n), Some(_)) => map2_into(&x, &grad, n, ELEMENTS_PER_TASK, |s, g, o| {
                dispatch!(gelu_backward(s, g, o))
            }),
            _ => Flex::gelu_backward(x, grad),
        }
    }

    fn fast_softmax(x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        match contiguous_f32(&x) {
            Some(n) if n > 0 => {
                let row = row_len(&x);
                map_into(x, n, rows_per_task(row) * row, |_, s, o| {
                    dispatch!(softmax_rows(s, o, row))
                })
            }
            _ => {
                let last = last_dim(&x);
                Flex::softmax(x, last)
            }
        }
    }

    fn fast_layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, eps: f64) -> FlexTensor {
        let x = contiguous(x);
        let (gamma, beta) = (gamma.to_contiguous(), beta.to_contiguous());
        match (
            contiguous_f32(&x),
            contiguous_f32(&gamma),
            contiguous_f32(&beta),
        ) {
            (Some(n), Some(_), Some(_)) if n > 0 => {
                let row = row_len(&x);
                let (g, b) = (gamma.storage::<f32>(), beta.storage::<f32>());
                let eps = eps as f32;
                map_into(x, n, rows_per_task(row) * row, |_, s, o| {
                    dispatch!(layer_norm_rows(s, g, b, o, eps))
                })
            }
            _ => Flex::layer_norm(x, gamma, Some(beta), eps),
        }
    }

    fn fast_layer_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        grad: FlexTensor,
        eps: f64,
    ) -> FlexTensor {
        let (x, gamma, grad) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            grad.to_contiguous(),
        );
        let Some(n) = contiguous_f32(&x) else {
            return layer_norm_backward_composed::<Flex>(x, gamma, grad, eps);
        };
        let row = row_len(&x);
        let (gamma, eps) = (gamma.storage::<f32>(), eps as f32);
        map2_into(&x, &grad, n, rows_per_task(row) * row, |x, g, o| {
            dispatch!(layer_norm_backward_rows(x, gamma, g, o, eps))
        })
    }

    fn fast_softmax_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let grad = grad.to_contiguous();
        match (contiguous_f32(&y), contiguous_f32(&grad)) {
            (Some(n), Some(_)) if n > 0 => {
                let row = row_len(&y);
                map2_into(&y, &grad, n, rows_per_task(row) * row, |y, g, o| {
                    dispatch!(softmax_backward_rows(y, g, o, row))
                })
            }
            _ => softmax_backward_composed::<Flex>(y, grad),
        }
    }
}

impl<B: Backend + Kernels, C: CheckpointStrategy> Kernels for Autodiff<B, C> {
    fn amx_affine(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct AmxAffineBackward;
        impl<B: Backend + Kernels> Backward<B, 1> for AmxAffineBackward {
            /// The frozen bf16 weight.
            type State = FloatTensor<B>;
            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let w = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::amx_affine_input_grad(grad, w)
                });
            }
        }
        let (x, node) = x.into_parts();
        let ((w, _), (b, _)) = (w.into_parts(), b.into_parts());
        match AmxAffineBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(w.clone(), B::amx_affine(x, w, b)),
            OpsKind::UnTracked(prep) => prep.finish(B::amx_affine(x, w, b)),
        }
    }

    fn fast_dropout(x: FloatTensor<Self>, seed: u64, keep: f64) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct DropoutBackward;
        impl<B: Backend + Kernels> Backward<B, 1> for DropoutBackward {
            /// The mask's seed and keep probability: the backward pass makes the same mask again.
            type State = (u64, f64);
            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (seed, keep) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::fast_dropout(grad, seed, keep)
                });
            }
        }
        let (x, node) = x.into_parts();
        match DropoutBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((seed, keep), B::fast_dropout(x, seed, keep)),
            OpsKind::UnTracked(prep) => prep.finish(B::fast_dropout(x, seed, keep)),
        }
    }

    fn fast_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LayerNormBackward;
        impl<B: Backend + Kernels> Backward<B, 3> for LayerNormBackward {
            /// The input, gamma and eps: enough to recompute the row statistics.
            type State = (FloatTensor<B>, FloatTensor<B>, f64);
            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [x_node, gamma_node, beta_node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, gamma, eps) = ops.state;
                let width = *x.shape().last().expect("a vector");
                // Parameter gradients sum over every row: [rows, width] → [width].
                let over_rows = |t: FloatTensor<B>| {
                    let rows = t.shape().num_elements() / width;
                    let summed = B::float_sum_dim(B::float_reshape(t, [rows, width].into()), 0);
                    B::float_reshape(summed, [width].into())
                };
                if let Some(node) = gamma_node {
                    let normalized = B::fast_normalize(x.clone(), eps);
                    grads.register::<B>(node.id, over_rows(B::float_mul(grad.clone(), normalized)));
                }
                if let Some(node) = beta_node {
                    grads.register::<B>(node.id, over_rows(grad.clone()));
                }
                if let Some(node) = x_node {
                    grads.register::<B>(node.id, B::fast_layer_norm_backward(x, gamma, grad, eps));
                }
            }
        }
        let (x, x_node) = x.into_parts();
        let (gamma, gamma_node) = gamma.into_parts();
        let (beta, beta_node) = beta.into_parts();
        let prep = LayerNormBackward.prepare::<C>([x_node, gamma_node, beta_node]);
        match prep.compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = (x.clone(), gamma.clone(), eps);
                prep.finish(state, B::fast_layer_norm(x, gamma, beta, eps))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_layer_norm(x, gamma, beta, eps)),
        }
    }

    fn fast_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record_unary::<B, C>(x, B::fast_gelu, B::fast_gelu_backward, Kept::Input)
    }

    fn fast_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record_unary::<B, C>(x, B::fast_softmax, B::fast_softmax_backward, Kept::Output)
    }
}

/// What a one-input op keeps for its backward pass.
#[derive(Clone, Copy, Debug)]
enum Kept {
    Input,
    Output,
}

type Kernel<B> = fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;

/// A one-input op's backward pass: `backward(kept, grad)`, `kept` its input or its output.
#[derive(Debug)]
struct UnaryBackward;

impl<B: Backend> Backward<B, 1> for UnaryBackward {
    type State = (FloatTensor<B>, Kernel<B>);
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (kept, backward) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| backward(kept, grad));
    }
}

/// Runs `forward` on `x` and records one autodiff node whose backward pass is `backward`.
fn record_unary<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    forward: fn(FloatTensor<B>) -> FloatTensor<B>,
    backward: Kernel<B>,
    kept: Kept,
) -> FloatTensor<Autodiff<B, C>> {
    let (x, node) = x.into_parts();
    match UnaryBackward
        .prepare::<C>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (state, y) = match kept {
                Kept::Input => (x.clone(), forward(x)),
                Kept::Output => {
                    let y = forward(x);
                    (y.clone(), y)
                }
            };
            prep.finish((state, backward), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x)),
    }
}

// ── flex tensor plumbing ─────────────────────────────────────────────────────────────────────

/// Elements per rayon task for element-wise kernels: large enough that a task outweighs its
/// scheduling, small enough that two threads share a `[16, 128, 1536]` activation evenly.
const ELEMENTS_PER_TASK: usize = 1 << 14;

/// The element count when `t` is f32 laid out contiguously from offset 0.
fn contiguous_f32(t: &FlexTensor) -> Option<usize> {
    let layout = t.layout();
    (t.dtype() == DType::F32 && layout.is_contiguous() && layout.start_offset() == 0)
        .then(|| layout.num_elements())
}

fn row_len(t: &FlexTensor) -> usize {
    *t.layout().shape().last().expect("softmax of a scalar")
}

fn last_dim(t: &FlexTensor) -> usize {
    t.layout().shape().num_dims() - 1
}

fn rows_per_task(row: usize) -> usize {
    (ELEMENTS_PER_TASK / row.max(1)).max(1)
}

/// Whether gemm can read `t` where it lies: a 2-D f32 matrix with non-negative strides.
pub(crate) fn gemm_matrix(t: &FlexTensor) -> bool {
    t.dtype() == DType::F32
        && t.layout().num_dims() == 2
        && t.layout().strides().iter().all(|&s| s >= 0)
}

/// gemm's `out := lhs · rhs` for `[m, k] · [k, n]` (`out` row-major, row stride n), or
/// `out += lhs · rhs` where `accumulate`; spread over rayon's threads from `parallel_from`
/// multiply-adds on. The operands are read in place through their layouts' offsets and strides.
///
/// # Safety
/// `lhs` and `rhs` pass `gemm_matrix`, with matching inner dimensions; `out` has room for m × n
/// values, initialised where `accumulate` (gemm writes every one of them without reading them
/// otherwise).
pub(crate) unsafe fn gemm_into(
    out: *mut f32,
    lhs: &FlexTensor,
    rhs: &FlexTensor,
    accumulate: bool,
    parallel_from: usize,
) {
    let (m, k, n) = (
        lhs.layout().shape()[0],
        lhs.layout().shape()[1],
        rhs.layout().shape()[1],
    );
    let operand = |t: &FlexTensor| {
        let (strides, start) = (t.layout().strides(), t.layout().start_offset());
        (t.storage::<f32>()[start..].as_ptr(), strides[0], strides[1])
    };
    let ((lhs_ptr, lhs_rs, lhs_cs), (rhs_ptr, rhs_rs, rhs_cs)) = (operand(lhs), operand(rhs));
    let parallelism = if m.saturating_mul(n).saturating_mul(k) >= parallel_from {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let (alpha, beta) = (if accumulate { 1.0 } else { 0.0 }, 1.0);
    // SAFETY: the caller's contract above.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            n as isize,
            accumulate,
            lhs_ptr,
            lhs_cs,
            lhs_rs,
            rhs_ptr,
            rhs_cs,
            rhs_rs,
            alpha,
            beta,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A contiguous f32 tensor of `shape` holding `values`.
pub(crate) fn f32_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape.into()),
        DType::F32,
    )
}

fn from_vec(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    f32_tensor(values, like.layout().shape().clone())
}

/// `x` itself when it is laid out contiguously from its first element (no copy: its storage stays
/// unshared, so `map_into` can write in place), else a contiguous copy.
fn contiguous(x: FlexTensor) -> FlexTensor {
    let layout = x.layout();
    if layout.is_contiguous() && layout.start_offset() == 0 {
        x
    } else {
        x.to_contiguous()
    }
}

/// `kernel(chunk_index, src, dst)` over chunks of `chunk` elements in parallel. In place when `x`
/// is the only owner of its storage (inference, or an op that keeps nothing for its backward
/// pass): each chunk is copied aside first, so kernels read and write distinct slices. Otherwise
/// into a new tensor shaped like `x`. Row kernels pass a whole number of rows as `chunk`: a chunk
/// never splits a row.
fn map_into(
    mut x: FlexTensor,
    n: usize,
    chunk: usize,
    kernel: impl Fn(usize, &[f32], &mut [f32]) + Sync,
) -> FlexTensor {
    if let Some(data) = x.try_storage_mut::<f32>() {
        data[..n].par_chunks_mut(chunk).enumerate().for_each_init(
            || vec![0f32; chunk],
            |aside, (i, values)| {
                let aside = &mut aside[..values.len()];
                aside.copy_from_slice(values);
                kernel(i, aside, values);
            },
        );
        return x;
    }
    let src = &x.storage::<f32>()[..n];
    let mut out = vec![0f32; n];
    out.par_chunks_mut(chunk)
        .zip(src.par_chunks(chunk))
        .enumerate()
        .for_each(|(i, (o, s))| kernel(i, s, o));
    from_vec(out, &x)
}

/// `kernel(a, b, dst)` over matching chunks of two f32 tensors of `n` elements each, in parallel,
/// into a new tensor shaped like `a` (the same chunk rule as `map_into`).
fn map2_into(
    a: &FlexTensor,
    b: &FlexTensor,
    n: usize,
    chunk: usize,
    kernel: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> FlexTensor {
    let (xs, ys) = (&a.storage::<f32>()[..n], &b.storage::<f32>()[..n]);
    let mut out = vec![0f32; n];
    out.par_chunks_mut(chunk)
        .zip(xs.par_chunks(chunk).zip(ys.par_chunks(chunk)))
        .for_each(|(o, (x, y))| kernel(x, y, o));
    from_vec(out, a)
}

// ── run-time ISA dispatch ────────────────────────────────────────────────────────────────────

/// The widest vector extension this CPU has, checked once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2Fma,
    Baseline,
}

impl Isa {
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    return Isa::Avx512;
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    return Isa::Avx2Fma;
                }
            }
            Isa::Baseline
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "AVX-512",
            Isa::Avx2Fma => "AVX2 + FMA",
            Isa::Baseline => "baseline (no AVX2)",
        }
    }
}

/// Calls `loops::NAME(args)` compiled for the widest ISA present (the loop bodies are
/// `#[inline(always)]`, so each `#[target_feature]` copy below vectorises them for its ISA).
macro_rules! dispatch {
    ($name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            match Isa::detect() {
                // SAFETY: the CPU was checked for these features by `Isa::detect`.
                Isa::Avx512 => unsafe { isa::avx512::$name($($arg),*) },
                Isa::Avx2Fma => unsafe { isa::avx2::$name($($arg),*) },
                Isa::Baseline => loops::$name($($arg),*),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            loops::$name($($arg),*)
        }
    }};
}
pub(crate) use dispatch;

/// One `#[target_feature]` wrapper per loop and ISA.
macro_rules! wrappers {
    ($features:literal: $($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[target_feature(enable = $features)]
            pub unsafe fn $name($($arg: $ty),*) {
                super::super::loops::$name($($arg),*)
            }
        )*
    };
}

macro_rules! isa_module {
    ($features:literal) => {
        wrappers! { $features:
            gelu_forward(src: &[f32], dst: &mut [f32]);
            dropout(src: &[f32], dst: &mut [f32], seed: u64, first_pair: u64, threshold: u64, scale: f32);
            gelu_backward(src: &[f32], grad: &[f32], dst: &mut [f32]);
            softmax_rows(src: &[f32], dst: &mut [f32], row: usize);
            softmax_rows_lse(src: &[f32], dst: &mut [f32], lse: &mut [f32], row: usize);
            exp_rows(src: &[f32], lse: &[f32], dst: &mut [f32], row: usize);
            softmax_backward_rows(y: &[f32], grad: &[f32], dst: &mut [f32], row: usize);
            layer_norm_rows(src: &[f32], gamma: &[f32], beta: &[f32], dst: &mut [f32], eps: f32);
            layer_norm_backward_rows(x: &[f32], gamma: &[f32], grad: &[f32], dst: &mut [f32], eps: f32);
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod isa {
    pub mod avx512 {
        // avx512dq: 64-bit lane multiplies, for the dropout's SplitMix64.
        isa_module!("avx512f,avx512dq,avx2,fma");
    }
    pub mod avx2 {
        isa_module!("avx2,fma");
    }
}

// ── the loops and their math ─────────────────────────────────────────────────────────────────

pub mod loops {
    use super::math::{erf_with_exp, exp};

    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    /// 1/√(2π)
    const INV_SQRT_2PI: f32 = 0.398_942_3;

    #[inline(always)]
    pub fn gelu_forward(src: &[f32], dst: &mut [f32]) {
        for (o, &x) in dst.iter_mut().zip(src) {
            let e = exp(-0.5 * x * x);
            *o = 0.5 * x * (1.0 + erf_with_exp(x * FRAC_1_SQRT_2, e));
        }
    }

    /// Element 2k + h of the mask is half h of SplitMix64's k-th output (`mask::keep_mask`):
    /// the stream's state is a counter, so any chunk can start at its own pair. The numbers are
    /// made a block at a time, then compared, so that both loops vectorise.
    #[inline(always)]
    pub fn dropout(
        src: &[f32],
        dst: &mut [f32],
        seed: u64,
        first_pair: u64,
        threshold: u64,
        scale: f32,
    ) {
        const PAIRS: usize = 32;
        let Ok(threshold) = u32::try_from(threshold) else {
            // keep = 1: every element is kept, at scale 1.
            dst.copy_from_slice(src);
            return;
        };
        let mut halves = [0u32; 2 * PAIRS];
        let blocks = src.chunks(2 * PAIRS).zip(dst.chunks_mut(2 * PAIRS));
        for (block, (s, o)) in blocks.enumerate() {
            let base = first_pair + (block * PAIRS) as u64;
            for (k, pair) in halves.chunks_exact_mut(2).enumerate() {
                let z = crate::kernels::mask::splitmix(seed, base + k as u64);
                pair[0] = z as u32;
                pair[1] = (z >> 32) as u32;
            }
            for ((o, &x), &half) in o.iter_mut().zip(s).zip(&halves) {
                *o = if half < threshold { x * scale } else { 0.0 };
            }
        }
    }

    #[inline(always)]
    pub fn gelu_backward(src: &[f32], grad: &[f32], dst: &mut [f32]) {
        for ((o, &x), &g) in dst.iter_mut().zip(src).zip(grad) {
            // exp(−x²/2) is both erf(x/√2)'s factor and the normal density's.
            let e = exp(-0.5 * x * x);
            let cdf = 0.5 * (1.0 + erf_with_exp(x * FRAC_1_SQRT_2, e));
            *o = g * (cdf + x * INV_SQRT_2PI * e);
        }
    }

    #[inline(always)]
    pub fn softmax_rows(src: &[f32], dst: &mut [f32], row: usize) {
        for (s, o) in src.chunks_exact(row).zip(dst.chunks_exact_mut(row)) {
            softmax_row(s, o);
        }
    }

    /// `softmax_rows`, and each row's log-sum-exp in `lse`: what the fused attention keeps to
    /// make the probabilities again in its backward pass (`exp_rows`).
    #[inline(always)]
    pub fn softmax_rows_lse(src: &[f32], dst: &mut [f32], lse: &mut [f32], row: usize) {
        let rows = src.chunks_exact(row).zip(dst.chunks_exact_mut(row));
        for ((s, o), lse) in rows.zip(lse) {
            let (max, sum) = softmax_row(s, o);
            *lse = max + sum.ln();
        }
    }

    /// `dst = exp(src − lse)` row by row: softmax rows from their log-sum-exp.
    #[inline(always)]
    pub fn exp_rows(src: &[f32], lse: &[f32], dst: &mut [f32], row: usize) {
        let rows = src.chunks_exact(row).zip(dst.chunks_exact_mut(row));
        for ((s, o), &lse) in rows.zip(lse) {
            for (o, &x) in o.iter_mut().zip(s) {
                *o = exp(x - lse);
            }
        }
    }

    /// One softmax row; returns the row's max and Σ exp(x − max).
    #[inline(always)]
    fn softmax_row(s: &[f32], o: &mut [f32]) -> (f32, f32) {
        let max = lanes(s, f32::NEG_INFINITY, f32::max);
        for (o, &x) in o.iter_mut().zip(s) {
            *o = exp(x - max);
        }
        let sum = lanes(o, 0.0, |a, b| a + b);
        let inv = 1.0 / sum;
        o.iter_mut().for_each(|o| *o *= inv);
        (max, sum)
    }

    #[inline(always)]
    pub fn softmax_backward_rows(y: &[f32], grad: &[f32], dst: &mut [f32], row: usize) {
        let rows = y.chunks_exact(row).zip(grad.chunks_exact(row));
        for ((y, g), o) in rows.zip(dst.chunks_exact_mut(row)) {
            for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                *o = y * g;
            }
            let dot = lanes(o, 0.0, |a, b| a + b);
            for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                *o = y * (g - dot);
            }
        }
    }

    /// Mean and 1/√(var + eps) of one row (two passes: the variance of the centred row).
    #[inline(always)]
    fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
        let n = x.len() as f32;
        let mean = lanes(x, 0.0, |a, b| a + b) / n;
        let mut sq = [0f32; 16];
        let chunks = x.chunks_exact(16);
        let tail: f32 = chunks
            .remainder()
            .iter()
            .map(|&v| (v - mean) * (v - mean))
            .sum();
        for chunk in chunks {
            for (a, &v) in sq.iter_mut().zip(chunk) {
                *a += (v - mean) * (v - mean);
            }
        }
        let var = (sq.iter().sum::<f32>() + tail) / n;
        (mean, 1.0 / (var + eps).sqrt())
    }

    #[inline(always)]
    pub fn layer_norm_rows(src: &[f32], gamma: &[f32], beta: &[f32], dst: &mut [f32], eps: f32) {
        let row = gamma.len();
        for (s, o) in src.chunks_exact(row).zip(dst.chunks_exact_mut(row)) {
            let (mean, rstd) = row_stats(s, eps);
            for (((o, &x), &g), &b) in o.iter_mut().zip(s).zip(gamma).zip(beta) {
                *o = (x - mean) * rstd * g + b;
            }
        }
    }

    /// dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = grad · gamma.
    #[inline(always)]
    pub fn layer_norm_backward_rows(
        x: &[f32],
        gamma: &[f32],
        grad: &[f32],
        dst: &mut [f32],
        eps: f32,
    ) {
        let row = gamma.len();
        let n = row as f32;
        let rows = x.chunks_exact(row).zip(grad.chunks_exact(row));
        for ((x, g), o) in rows.zip(dst.chunks_exact_mut(row)) {
            let (mean, rstd) = row_stats(x, eps);
            for ((o, &g), &w) in o.iter_mut().zip(g).zip(gamma) {
                *o = g * w;
            }
            let mean_dxhat = lanes(o, 0.0, |a, b| a + b) / n;
            let mut dot = [0f32; 16];
            let pairs = o.chunks_exact(16).zip(x.chunks_exact(16));
            for (d, xs) in pairs {
                for ((a, &d), &v) in dot.iter_mut().zip(d).zip(xs) {
                    *a += d * (v - mean) * rstd;
                }
            }
            let done = row / 16 * 16;
            let tail: f32 = o[done..]
                .iter()
                .zip(&x[done..])
                .map(|(&d, &v)| d * (v - mean) * rstd)
                .sum();
            let mean_dot = (dot.iter().sum::<f32>() + tail) / n;
            for (o, &v) in o.iter_mut().zip(x) {
                *o = rstd * (*o - mean_dxhat - (v - mean) * rstd * mean_dot);
            }
        }
    }

    /// A reduction in 16 independent lanes, then across them: the compiler vectorises this
    /// shape, not a single running float (it may not reorder float additions itself).
    #[inline(always)]
    fn lanes(xs: &[f32], init: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
        const LANES: usize = 16;
        let mut acc = [init; LANES];
        let chunks = xs.chunks_exact(LANES);
        let tail = chunks.remainder();
        for chunk in chunks {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a = op(*a, x);
            }
        }
        let lanes = acc.iter().fold(init, |a, &b| op(a, b));
        tail.iter().fold(lanes, |a, &b| op(a, b))
    }
}

pub mod math {
    /// e^x for f32, branch-free (Cephes `expf`): 2^n · p(r), r = x − n·ln 2 in [−ln2/2, ln2/2].
    /// Below −87.3 (where f32 runs out of normal numbers) it returns exactly 0, as libm does for
    /// the attention mask's −10000.
    #[inline(always)]
    #[allow(clippy::excessive_precision)] // Cephes' coefficients, as published
    pub fn exp(x: f32) -> f32 {
        const LOW: f32 = -87.336_55;
        const HIGH: f32 = 88.376_26;
        let clamped = x.clamp(LOW, HIGH);
        let n = (clamped * std::f32::consts::LOG2_E + 0.5).floor();
        let r = clamped - n * 0.693_359_4 + n * 2.121_944_4e-4;
        let p = 1.987_569_1e-4;
        let p = p * r + 1.398_199_9e-3;
        let p = p * r + 8.333_452e-3;
        let p = p * r + 4.166_579_6e-2;
        let p = p * r + 1.666_666_5e-1;
        let p = p * r + 5.000_000_1e-1;
        let y = p * r * r + r + 1.0;
        let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
        if x < LOW {
            0.0
        } else {
            y * scale
        }
    }

    /// erf(z) given e = exp(−z²): Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7) for |z| ≥ 1,
    /// and the Taylor series to z²¹ below, where A&S's `1 − erfc` would cancel in f32. Both are
    /// computed and one selected, so the loop stays branch-free.
    #[inline(always)]
    pub fn erf_with_exp(z: f32, e: f32) -> f32 {
        let a = z.abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly = 1.061_405_4;
        let poly = poly * t - 1.453_152;
        let poly = poly * t + 1.421_413_7;
        let poly = poly * t - 0.284_496_74;
        let poly = poly * t + 0.254_829_6;
        let tail = (1.0 - poly * t * e).copysign(z);
        let z2 = z * z;
        let series = 1.0 / 76_204_800.0;
        let series = series * z2 - 1.0 / 6_894_720.0;
        let series = series * z2 + 1.0 / 685_440.0;
        let series = series * z2 - 1.0 / 75_600.0;
        let series = series * z2 + 1.0 / 9_360.0;
        let series = series * z2 - 1.0 / 1_320.0;
        let series = series * z2 + 1.0 / 216.0;
        let series = series * z2 - 1.0 / 42.0;
        let series = series * z2 + 1.0 / 10.0;
        let series = series * z2 - 1.0 / 3.0;
        let series = series * z2 + 1.0;
        let near_zero = std::f32::consts::FRAC_2_SQRT_PI * z * series;
        if a < 1.0 {
            near_zero
        } else {
            tail
        }
    }

    pub fn erf(z: f32) -> f32 {
        erf_with_exp(z, exp(-z * z))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    #[test]
    fn exp_is_within_two_ulp_of_libm_and_zero_under_the_mask() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, libm) = (math::exp(x) as f64, (x as f64).exp());
            worst = worst.max(((ours - libm) / libm).abs());
            x += 0.00731;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(math::exp(-10000.0), 0.0);
        assert_eq!(math::exp(-100.0), 0.0);
    }

    #[test]
    fn erf_is_within_a_and_s_bound() {
        let mut worst = 0.0f64;
        let mut z = -6.0f32;
        while z < 6.0 {
            worst = worst.max((math::erf(z) as f64 - libm_erf(z as f64)).abs());
            z += 0.000_613;
        }
        assert!(worst < 2e-7, "worst absolute error {worst}");
        let mut worst_gelu = 0.0f64;
        let mut x = -8.0f32;
        while x < 8.0 {
            let mut ours = [0f32];
            loops::gelu_forward(&[x], &mut ours);
            let exact = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / std::f64::consts::SQRT_2));
            worst_gelu = worst_gelu.max((ours[0] as f64 - exact).abs() / (x.abs() as f64).max(1.0));
            x += 0.001_37;
        }
        assert!(worst_gelu < 2e-7, "worst GELU error {worst_gelu}");
    }

    fn libm_erf(z: f64) -> f64 {
        // erf through the complementary error function's series is not in std; compare with
        // a double-precision evaluation of the same integral instead (Simpson, fine grid).
        let n = 20_000;
        let h = z / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut sum = f(0.0) + f(z);
        for i in 1..n {
            sum += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        sum * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    /// Rows of 151 over several rayon chunks: a chunk that split a row would show.
    const SHAPE: [usize; 4] = [2, 4, 70, 151];

    fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::random(shape, Distribution::Normal(0.0, 3.0), device)
    }

    #[test]
    fn forward_matches_burn_on_flex() {
        let device = Device::flex();
        let x = random(SHAPE, &device);
        let tolerance = Tolerance::absolute(1e-6);
        gelu(x.clone()).into_data().assert_approx_eq::<f32>(
            &burn::tensor::activation::gelu(x.clone()).into_data(),
            tolerance,
        );
        softmax_last(x.clone()).into_data().assert_approx_eq::<f32>(
            &burn::tensor::activation::softmax(x, 3).into_data(),
            tolerance,
        );
    }

    #[test]
    fn gradients_match_burn_under_autodiff() {
        let device = Device::flex().autodiff();
        let x = random(SHAPE, &device.clone().inner());
        let weights = random(SHAPE, &device);
        let grad_of = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
            let x = Tensor::<4>::from_data(x.to_data(), &device).require_grad();
            let grads = (f(x.clone()) * weights.clone()).sum().backward();
            x.grad(&grads).expect("x is tracked").into_data()
        };
        let tolerance = Tolerance::absolute(2e-5);
        grad_of(&|x| gelu(x))
            .assert_approx_eq::<f32>(&grad_of(&|x| burn::tensor::activation::gelu(x)), tolerance);
        grad_of(&|x| softmax_last(x)).assert_approx_eq::<f32>(
            &grad_of(&|x| burn::tensor::activation::softmax(x, 3)),
            tolerance,
        );
    }

    #[test]
    fn layer_norm_and_its_gradients_match_burn() {
        use burn::module::Param;
        use burn::nn::LayerNormConfig;
        let device = Device::flex().autodiff();
        let inner = device.clone().inner();
        let x = random(SHAPE, &inner);
        let weights = random(SHAPE, &device);
        let gamma = Tensor::<1>::random([151], Distribution::Normal(1.0, 0.5), &inner);
        let beta = Tensor::<1>::random([151], Distribution::Normal(0.0, 0.5), &inner);
        let eps = 1e-5;
        // Every input's gradient (x, gamma, beta), ours and burn's.
        let grads_of = |ours: bool| {
            let mut norm = LayerNormConfig::new(151).with_epsilon(eps).init(&device);
            norm.gamma = Param::from_tensor(Tensor::from_data(gamma.to_data(), &device));
            norm.beta = Some(Param::from_tensor(Tensor::from_data(
                beta.to_data(),
                &device,
            )));
            let x = Tensor::<4>::from_data(x.to_data(), &device).require_grad();
            let y = if ours {
                layer_norm(x.clone(), &norm, eps)
            } else {
                norm.forward(x.clone())
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            let beta = norm.beta.as_ref().expect("bias");
            [
                y.into_data(),
                x.grad(&grads).expect("x").into_data(),
                norm.gamma.val().grad(&grads).expect("gamma").into_data(),
                beta.val().grad(&grads).expect("beta").into_data(),
            ]
        };
        // The parameter gradients sum 560 rows: compare them relative to their size.
        let tolerance = Tolerance::rel_abs(1e-4, 1e-4);
        for (ours, burns) in grads_of(true).iter().zip(grads_of(false).iter()) {
            ours.assert_approx_eq::<f32>(burns, tolerance);
        }
    }

    #[test]
    fn seeded_dropout_applies_keep_mask_in_both_passes() {
        let device = Device::flex().autodiff();
        let x = random(SHAPE, &device.clone().inner());
        let n = SHAPE.iter().product::<usize>();
        let mask =
            Tensor::<4>::from_data(TensorData::new(mask::keep_mask(99, n, 0.9), SHAPE), &device);
        let weights = random(SHAPE, &device);
        let tracked = Tensor::<4>::from_data(x.to_data(), &device).require_grad();
        let dropped = seeded_dropout(tracked.clone(), 99, 0.9);
        let expected = Tensor::<4>::from_data(x.to_data(), &device) * mask.clone();
        let exact = Tolerance::absolute(0.0);
        dropped
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), exact);
        let grads = (dropped * weights.clone()).sum().backward();
        let grad = tracked.grad(&grads).expect("x is tracked").into_data();
        grad.assert_approx_eq::<f32>(&(weights * mask).into_data(), exact);
    }

    #[test]
    fn a_masked_key_gets_exactly_zero_weight() {
        let device = Device::flex();
        let scores = Tensor::<4>::from_data(
            TensorData::new(vec![0.5f32, -10000.0, 1.5, -10000.0], [1, 1, 1, 4]),
            &device,
        );
        let probs = softmax_last(scores)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!((probs[1], probs[3]), (0.0, 0.0));
        assert!((probs[0] + probs[2] - 1.0).abs() < 1e-6);
    }
}
