//! AdamW's update as one pass over a parameter on flex: the moments and the parameter read and
//! written once each, in place where their storage is unshared.
//!
//! Why: burn's `AdamW` is eleven element-wise ops a parameter (moments, bias corrections, square
//! root, division, the update), each a pass over memory and most a fresh buffer; on FT's 22.7M
//! weights they were 7% of a MiniLM train step at 128 tokens in `perf`. The arithmetic here is
//! burn's, op for op in f32 without fused multiply-adds, so every value is the same to the bit:
//! a run, its checkpoint and its exact resume do not change.

use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, DType, Dispatch};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::{contiguous, f32_tensor, on_flex, Isa};

/// Whether `fused_adamw` can update `param`: an f32 tensor on flex.
pub fn fused_adamw_applies<const D: usize>(param: &Tensor<D>) -> bool {
    on_flex(param) && param.dtype() == DType::F32
}

/// One AdamW step where `fused_adamw_applies`: the parameter, first and second moment after it.
/// At a parameter's first step (`step.time` 1) the moments are not read.
pub fn fused_adamw<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: (Tensor<D>, Tensor<D>),
    step: AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (param, moment_1, moment_2) = <Dispatch as AdamWKernel>::fast_adamw(
        param.into_dispatch(),
        grad.into_dispatch(),
        moments.0.into_dispatch(),
        moments.1.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(param),
        Tensor::from_dispatch(moment_1),
        Tensor::from_dispatch(moment_2),
    )
}

/// The update as a backend op: flex only (the optimizer runs on the parameters' plain tensors).
#[backend_extension(Flex)]
pub trait AdamWKernel: Backend {
    fn fast_adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl AdamWKernel for Flex {
    fn fast_adamw(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamWStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        self::step(param, grad, moment_1, moment_2, step)
            .expect("fast_adamw: f32 parameter, gradient and moments of one size")
    }
}

/// One step's numbers: the hyperparameters, the step count after it (1 for a parameter's first
/// update) and the learning rate, as burn's `AdamW` turns them into f32.
#[derive(Clone, Copy, Debug)]
pub struct AdamWStep {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub time: u32,
    pub lr: f64,
}

/// What the loop multiplies and divides by, computed once a step as burn does.
#[derive(Clone, Copy, Debug)]
struct AdamWScalars {
    beta_1: f32,
    beta_2: f32,
    factor_1: f32,
    factor_2: f32,
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    lr: f32,
    first: bool,
}

impl AdamWStep {
    fn scalars(self) -> AdamWScalars {
        let time = self.time as i32;
        AdamWScalars {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            factor_1: 1.0 - self.beta_1,
            factor_2: 1.0 - self.beta_2,
            correction_1: 1f32 - self.beta_1.powi(time),
            correction_2: 1f32 - self.beta_2.powi(time),
            epsilon: self.epsilon,
            lr: self.lr as f32,
            first: self.time == 1,
        }
    }
}

/// Elements a rayon task updates.
const ELEMENTS_PER_TASK: usize = 1 << 15;

/// `(param, moment_1, moment_2)` after one step from `grad`; `None` unless all four are f32 of
/// one length. At a parameter's first step (`time` 1) the moments given are not read.
fn step(
    param: FlexTensor,
    grad: FlexTensor,
    moment_1: FlexTensor,
    moment_2: FlexTensor,
    step: AdamWStep,
) -> Option<(FlexTensor, FlexTensor, FlexTensor)> {
    let n = param.layout().num_elements();
    let all_f32 = [&param, &grad, &moment_1, &moment_2]
        .iter()
        .all(|t| t.dtype() == DType::F32 && t.layout().num_elements() == n);
    if !all_f32 {
        return None;
    }
    let scalars = step.scalars();
    let (mut moment_1, mut moment_2) = if scalars.first {
        let zeros = || f32_tensor(vec![0f32; n], param.layout().shape().clone());
        (zeros(), zeros())
    } else {
        (contiguous(moment_1), contiguous(moment_2))
    };
    let (mut param, grad) = (contiguous(param), contiguous(grad));
    // `storage_mut` copies a buffer something else still holds, and writes in place otherwise.
    let (values, m1, m2) = (
        &mut param.storage_mut::<f32>()[..n],
        &mut moment_1.storage_mut::<f32>()[..n],
        &mut moment_2.storage_mut::<f32>()[..n],
    );
    values
        .par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(grad.storage::<f32>()[..n].par_chunks(ELEMENTS_PER_TASK))
        .zip(m1.par_chunks_mut(ELEMENTS_PER_TASK))
        .zip(m2.par_chunks_mut(ELEMENTS_PER_TASK))
        .for_each(|(((p, g), m1), m2)| update_chunk(p, g, m1, m2, scalars));
    Some((param, moment_1, moment_2))
}

/// `adamw_update` compiled for the widest ISA the CPU has (division and square root vectorise;
/// no fused multiply-add: Rust does not contract `a * b + c`).
fn update_chunk(p: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32], s: AdamWScalars) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512(
            p: &mut [f32],
            g: &[f32],
            m1: &mut [f32],
            m2: &mut [f32],
            s: AdamWScalars,
        ) {
            adamw_update(p, g, m1, m2, s)
        }
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(p: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32], s: AdamWScalars) {
            adamw_update(p, g, m1, m2, s)
        }
        match Isa::detect() {
            // SAFETY: the CPU was checked for these features by `Isa::detect`.
            Isa::Avx512 => return unsafe { avx512(p, g, m1, m2, s) },
            Isa::Avx2Fma => return unsafe { avx2(p, g, m1, m2, s) },
            Isa::Baseline => {}
        }
    }
    adamw_update(p, g, m1, m2, s)
}

/// burn's `AdamW::step` with weight decay 0 and without AMSGrad (`burn-optim`'s `adamw.rs`):
/// m₁ ← β₁m₁ + (1−β₁)g, m₂ ← β₂m₂ + (1−β₂)g², p ← p − lr · (m₁/c₁) / (√(m₂/c₂) + ε), with
/// cₖ = 1 − βₖᵗ; at the first step m₁ = (1−β₁)g and m₂ = (1−β₂)g² as burn writes them.
#[inline(always)]
fn adamw_update(param: &mut [f32], grad: &[f32], m1: &mut [f32], m2: &mut [f32], s: AdamWScalars) {
    if s.first {
        for (((p, &g), a), b) in param
            .iter_mut()
            .zip(grad)
            .zip(m1.iter_mut())
            .zip(m2.iter_mut())
        {
            *a = g * s.factor_1;
            *b = (g * g) * s.factor_2;
            *p = update(*p, *a, *b, &s);
        }
    } else {
        for (((p, &g), a), b) in param
            .iter_mut()
            .zip(grad)
            .zip(m1.iter_mut())
            .zip(m2.iter_mut())
        {
            *a = *a * s.beta_1 + g * s.factor_1;
            *b = *b * s.beta_2 + (g * g) * s.factor_2;
            *p = update(*p, *a, *b, &s);
        }
    }
}

#[inline(always)]
fn update(p: f32, m1: f32, m2: f32, s: &AdamWScalars) -> f32 {
    let delta = (m1 / s.correction_1) / ((m2 / s.correction_2).sqrt() + s.epsilon);
    p - delta * s.lr
}
