//! The optimizer side of training: AdamW on the trainable parameters only, global gradient-norm
//! clipping (burn's own clipping is per tensor; the paper's Trainer clips the global norm), and the
//! learning-rate schedules of the reference scripts (`schedule.rs`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{
    AdamWConfig, AdamWState, AdaptiveMomentumState, GradientsParams, LearningRate, ModuleOptimizer,
    Optimizer,
};
use burn::tensor::{Device, Tensor};
use ptv2_models::kernels::adamw::{fused_adamw, fused_adamw_applies, AdamWStep};

/// AdamW as the reference code uses it: β 0.9/0.999, ε 1e-8, weight decay 0. Parameters without a
/// gradient (frozen ones) are skipped by burn's optimizer: no update, no state.
pub fn adamw() -> ModuleOptimizer {
    ModuleOptimizer::from(AdamW {
        burn: burns_adamw().build(),
    })
}

/// burn's own AdamW with those settings.
fn burns_adamw() -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(BETA_1)
        .with_beta_2(BETA_2)
        .with_epsilon(EPSILON)
        .with_weight_decay(0.0)
}

const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// burn's AdamW, its update done in one pass a parameter on flex (`kernels::adamw`: the same
/// arithmetic, the same values) and by burn's own ops elsewhere. Its state is burn's `AdamWState`,
/// so checkpoints and their exact resume are burn's.
#[derive(Clone)]
struct AdamW {
    burn: burn::optim::AdamW,
}

impl Optimizer for AdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamWState<D>>,
    ) -> (Tensor<D>, Option<AdamWState<D>>) {
        if !fused_adamw_applies(&param) {
            return self.burn.step(lr, param, grad, state);
        }
        let (time, moments) = match state {
            Some(AdamWState { momentum }) => {
                (momentum.time + 1, (momentum.moment_1, momentum.moment_2))
            }
            // Not read at a parameter's first step.
            None => (1, (grad.clone(), grad.clone())),
        };
        let step = AdamWStep {
            beta_1: BETA_1,
            beta_2: BETA_2,
            epsilon: EPSILON,
            time: time as u32,
            lr,
        };
        let (param, moment_1, moment_2) = fused_adamw(param, grad, moments, step);
        let momentum = AdaptiveMomentumState {
            time,
            moment_1,
            moment_2,
            max_moment_2: None,
        };
        (param, Some(AdamWState { momentum }))
    }

    fn to_device<const D: usize>(state: AdamWState<D>, device: &Device) -> AdamWState<D> {
        <burn::optim::AdamW as Optimizer>::to_device(state, device)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Distribution;

    /// Steps `linear` with `optimizer` on random gradients; its weights and the optimizer after.
    fn trained(
        mut linear: Linear,
        mut optimizer: ModuleOptimizer,
        steps: usize,
    ) -> (Linear, ModuleOptimizer) {
        let device = Device::flex().autodiff();
        device.seed(9);
        for step in 0..steps {
            let x = Tensor::<2>::random([8, 300], Distribution::Default, &device);
            let grads = linear.forward(x).powf_scalar(2.0).sum().backward();
            let grads = GradientsParams::from_grads(grads, &linear);
            linear = optimizer.step(1e-3 * (step + 1) as f64, linear, grads);
        }
        (linear, optimizer)
    }

    #[test]
    fn the_one_pass_adamw_is_burns_to_the_bit_and_keeps_its_state() {
        let burns = || burns_adamw().init();
        // 300 × 200: more than one of the kernel's chunks, over rayon's threads.
        let start = LinearConfig::new(300, 200).init(&Device::flex().autodiff());
        let values = |linear: &Linear| {
            let bias = linear.bias.as_ref().expect("a bias").val();
            [linear.weight.val().into_data(), bias.into_data()]
        };
        // Drawn now (burn initialises a parameter when first read), so both runs start from it.
        let initial = values(&start);
        let (ours, our_optimizer) = trained(start.clone(), adamw(), 4);
        let (theirs, their_optimizer) = trained(start.clone(), burns(), 4);
        assert_ne!(values(&ours)[0], initial[0], "it trained");
        for (a, b) in values(&ours).iter().zip(&values(&theirs)) {
            a.assert_eq(b, true);
        }
        // The saved state is burn's: burn's AdamW loads ours and takes the same next step.
        assert_eq!(
            our_optimizer.to_record().len(),
            their_optimizer.to_record().len()
        );
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("adamw.bpk");
        our_optimizer.save(&path).expect("ours saves");
        let loaded = burns().load(&path).expect("burn's AdamW loads our state");
        let (next, _) = trained(ours.clone(), our_optimizer, 1);
        let (burns_next, _) = trained(ours.clone(), loaded, 1);
        for (a, b) in values(&next).iter().zip(&values(&burns_next)) {
            a.assert_eq(b, true);
        }
        assert_ne!(values(&next)[0], values(&ours)[0], "the next step moved it");
    }
}
