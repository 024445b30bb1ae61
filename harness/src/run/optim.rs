//! The optimizer side of training: AdamW on the trainable parameters only, global gradient-norm
//! clipping (burn's own clipping is per tensor; the paper's Trainer clips the global norm), and the
//! learning-rate schedules of the reference scripts (`schedule.rs`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Tensor;

/// AdamW as the reference code uses it: β 0.9/0.999, ε 1e-8, weight decay 0. Parameters without a
/// gradient (frozen ones) are skipped by burn's optimizer: no update, no state.
pub fn adamw() -> burn::optim::ModuleOptimizer {
    AdamWConfig::new()
        .with_weight_decay(0.0)
        .with_epsilon(1e-8)
        .init()
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let squares = grad.powf_scalar(2.0).sum();
            self.sum = Some(match self.sum.take() {
                Some(sum) => sum + squares,
                None => squares,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f32,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, grad * self.factor);
        }
    }
}

/// Scale all gradients so their global L2 norm is at most `max_norm` (torch `clip_grad_norm_`).
/// Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f32) -> f32 {
    let mut norm = SquaredNorm { grads, sum: None };
    module.visit(&mut norm);
    let Some(sum) = norm.sum else { return 0.0 };
    let total = sum.sqrt().into_scalar::<f32>();
    let factor = max_norm / (total + 1e-6);
    if factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    total
}
