//! Learning-rate schedules of the reference scripts: linear decay (optional warmup) for
//! GLUE/SuperGLUE, per-epoch exponential decay for NER and QA.

use serde::{Deserialize, Serialize};

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

/// A run's learning-rate schedule, written as `--schedule` takes it (`linear`, `linear:0.06`,
/// `exp:0.95`) in config.json and the results tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Schedule {
    /// Linear warmup over `warmup_ratio` of all steps, then linear decay to 0 (GLUE/SuperGLUE).
    Linear { warmup_ratio: f64 },
    /// Multiply by `gamma` once per epoch (NER, QA: ExponentialLR 0.95).
    Exponential { gamma: f64 },
}

ptv2_models::text_form!(Schedule);

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            || format!("schedule \"{text}\": expected linear, linear:WARMUP_RATIO or exp:GAMMA");
        match text.split_once(':') {
            None if text == "linear" => Ok(Self::Linear { warmup_ratio: 0.0 }),
            Some(("linear", r)) => match r.parse() {
                Ok(warmup_ratio) if (0.0..1.0).contains(&warmup_ratio) => {
                    Ok(Self::Linear { warmup_ratio })
                }
                _ => Err(format!("{}: WARMUP_RATIO must be in [0, 1)", bad())),
            },
            Some(("exp", g)) => match g.parse() {
                Ok(gamma) if gamma > 0.0 && gamma <= 1.0 => Ok(Self::Exponential { gamma }),
                _ => Err(format!("{}: GAMMA must be in (0, 1]", bad())),
            },
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
