//! The optimizer side of training: AdamW on the trainable parameters only, global gradient-norm
//! clipping (burn's own clipping is per tensor; the paper's Trainer clips the global norm), and the
//! learning-rate schedules of the reference scripts.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

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

impl std::fmt::Display for Schedule {
    /// As `--schedule` takes it: linear, linear:WARMUP_RATIO, exp:GAMMA.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Linear { warmup_ratio } if *warmup_ratio == 0.0 => write!(f, "linear"),
            Self::Linear { warmup_ratio } => write!(f, "linear:{warmup_ratio}"),
            Self::Exponential { gamma } => write!(f, "exp:{gamma}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Linear warmup over `warmup_ratio` of all steps, then linear decay to 0 (GLUE/SuperGLUE).
    Linear { warmup_ratio: f64 },
    /// Multiply by `gamma` once per epoch (NER, QA: ExponentialLR 0.95).
    Exponential { gamma: f64 },
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            || format!("schedule \"{text}\": expected linear, linear:WARMUP_RATIO or exp:GAMMA");
        match text.split_once(':') {
            None if text == "linear" => Ok(Self::Linear { warmup_ratio: 0.0 }),
            Some(("linear", r)) => r
                .parse()
                .map(|warmup_ratio| Self::Linear { warmup_ratio })
                .map_err(|_| bad()),
            Some(("exp", g)) => g
                .parse()
                .map(|gamma| Self::Exponential { gamma })
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    /// The learning rate at `step` (0-based) of `total` steps, in epoch `epoch` (0-based).
    pub fn lr(&self, base: f64, step: usize, total: usize, epoch: usize) -> f64 {
        match *self {
            Self::Linear { warmup_ratio } => {
                let warmup = (warmup_ratio * total as f64).ceil() as usize;
                if step < warmup {
                    base * step as f64 / warmup.max(1) as f64
                } else {
                    base * ((total - step) as f64 / (total - warmup).max(1) as f64).max(0.0)
                }
            }
            Self::Exponential { gamma } => base * gamma.powi(epoch as i32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_schedule_warms_up_and_decays_to_zero() {
        let s = Schedule::parse("linear:0.1").unwrap();
        assert_eq!(s.lr(1.0, 0, 100, 0), 0.0);
        assert!((s.lr(1.0, 5, 100, 0) - 0.5).abs() < 1e-12);
        assert!((s.lr(1.0, 10, 100, 0) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 55, 100, 0) - 0.5).abs() < 1e-12);
        assert_eq!(Schedule::parse("linear").unwrap().lr(2.0, 0, 10, 0), 2.0);
    }

    #[test]
    fn exponential_schedule_steps_per_epoch() {
        let s = Schedule::parse("exp:0.95").unwrap();
        assert!((s.lr(1.0, 999, 1000, 2) - 0.9025).abs() < 1e-12);
        assert!(Schedule::parse("cosine").is_err());
    }
}
