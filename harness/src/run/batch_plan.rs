//! The order a run trains in: each epoch's batches, drawn from the run's seed as `batching` cuts
//! them, and each step's learning rate. Pure (no model, no files): a resumed run draws its
//! finished epochs again to stand where it stopped, and a replay reads the same plan.

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::records::schedule::Schedule;
use crate::records::settings::{Batching, RunSettings};
use crate::run::tasks::epoch_batches;

pub struct BatchPlan {
    rng: StdRng,
    /// Each training unit's size, for length-grouped batches.
    sizes: Vec<usize>,
    batch_size: usize,
    batching: Batching,
    schedule: Schedule,
    lr: f64,
    epochs: usize,
    pub steps_per_epoch: usize,
    /// Every epoch's batches drawn so far (training-unit indices): `train_order.json`.
    pub order: Vec<Vec<Vec<usize>>>,
}

impl BatchPlan {
    /// The plan of a run with these settings over training units of these sizes.
    pub fn new(settings: &RunSettings, sizes: Vec<usize>) -> Self {
        Self {
            rng: StdRng::seed_from_u64(settings.seed),
            steps_per_epoch: sizes.len().div_ceil(settings.batch_size),
            sizes,
            batch_size: settings.batch_size,
            batching: settings.batching,
            schedule: settings.schedule.clone(),
            lr: settings.lr,
            epochs: settings.epochs,
            order: vec![],
        }
    }

    /// The next epoch's batches, recorded in `order`.
    pub fn next_epoch(&mut self) -> Vec<Vec<usize>> {
        let batches = epoch_batches(&self.sizes, self.batch_size, self.batching, &mut self.rng);
        self.order.push(batches.clone());
        batches
    }

    /// The learning rate of step `step` (0-based, counted over the whole run).
    pub fn lr_at(&self, step: usize) -> f64 {
        let total = self.steps_per_epoch * self.epochs;
        self.schedule
            .lr(self.lr, step, total, step / self.steps_per_epoch)
    }

    /// The learning rate of every step of the run, in order (what a replay trains with).
    pub fn learning_rates(&self) -> Vec<f64> {
        (0..self.steps_per_epoch * self.epochs)
            .map(|step| self.lr_at(step))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: &str) -> RunSettings {
        let values = [
            ("task", "sst2"),
            ("method", "pt2"),
            ("lr", "0.01"),
            ("epochs", "3"),
            ("batch_size", "4"),
            ("seed", seed),
        ];
        RunSettings::from_values(&values, "t").unwrap()
    }

    #[test]
    fn the_same_seed_draws_the_same_epochs_and_every_unit_once_an_epoch() {
        let sizes: Vec<usize> = (0..10).map(|i| 5 + i % 3).collect();
        let (mut a, mut b) = (
            BatchPlan::new(&settings("1"), sizes.clone()),
            BatchPlan::new(&settings("1"), sizes.clone()),
        );
        assert_eq!(a.steps_per_epoch, 3);
        for _ in 0..3 {
            let epoch = a.next_epoch();
            assert_eq!(epoch, b.next_epoch());
            let mut units: Vec<usize> = epoch.concat();
            units.sort();
            assert_eq!(units, (0..10).collect::<Vec<_>>());
        }
        assert_eq!(a.order.len(), 3);
        let mut other = BatchPlan::new(&settings("2"), sizes);
        assert_ne!(other.next_epoch(), a.order[0]);
    }

    #[test]
    fn the_learning_rates_cover_every_step_and_decay_linearly() {
        let plan = BatchPlan::new(&settings("1"), vec![1; 10]);
        let rates = plan.learning_rates();
        assert_eq!(rates.len(), 9);
        assert!((rates[0] - 0.01).abs() < 1e-12);
        assert!(rates.windows(2).all(|w| w[1] < w[0]));
    }
}
