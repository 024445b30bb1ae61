//! The end of each training epoch: dev scored, the epoch recorded in the run's progress, and a
//! new best epoch's predictions and checkpoint written into the run dir (each atomically). Both
//! frameworks score here: ptv2's own model and the logits a replay in PyTorch sends back.

use std::time::Instant;

use anyhow::{Context, Result};

use ptv2_models::TunedModel;

use crate::records::events::{self, Event};
use crate::records::io::write_atomic;
use crate::records::run_dir::{EpochRecord, RunDir, CHECKPOINT_FILE};
use crate::run::resume::Progress;
use crate::run::tasks::{Predictor, Task};

/// One finished epoch, as the training loop hands it over.
pub struct EpochDone {
    /// 0-based.
    pub epoch: usize,
    pub train_loss: f64,
    /// When the epoch began (its seconds include its evaluation).
    pub began: Instant,
}

/// Where an epoch's scores go, and whether to tell stderr.
pub struct DevScoring<'a> {
    pub out: &'a RunDir,
    pub task: &'a dyn Task,
    pub epochs: usize,
    pub verbose: bool,
}

impl DevScoring<'_> {
    /// Score dev with `with`, record the epoch in `progress`, and write the predictions of a new
    /// best epoch; true when it is one.
    pub fn score(
        &self,
        with: &Predictor,
        done: EpochDone,
        progress: &mut Progress,
    ) -> Result<bool> {
        let result = self.task.evaluate(with)?;
        let score = result.scores[0].1;
        let improved = progress.best.is_none_or(|(_, best)| score > best);
        if improved {
            progress.best = Some((done.epoch, score));
            write_atomic(
                &self.out.file(result.predictions_file),
                result.predictions.as_bytes(),
            )?;
        }
        let seconds = done.began.elapsed().as_secs_f64();
        if self.verbose {
            eprintln!(
                "epoch {}/{}: train loss {:.4}, dev {} {score:.4}{} ({seconds:.0} s)",
                done.epoch + 1,
                self.epochs,
                done.train_loss,
                result.scores[0].0,
                if improved { " (best)" } else { "" },
            );
        }
        if let Some(run_id) = events::current_run() {
            events::emit(&Event::Epoch {
                run_id: &run_id,
                epoch: done.epoch + 1,
                epochs: self.epochs,
                train_loss: done.train_loss,
                metric: &result.scores[0].0,
                dev: score,
                seconds,
            });
        }
        progress.epochs.push(EpochRecord {
            epoch: done.epoch + 1,
            train_loss: done.train_loss,
            dev: result.scores,
            seconds,
        });
        Ok(improved)
    }
}

/// The best epoch's weights as the run's checkpoint (what `Trained::load` reads back).
pub fn keep_checkpoint(out: &RunDir, model: TunedModel) -> Result<()> {
    let tmp = out.file(&format!(".{CHECKPOINT_FILE}.tmp-{}", std::process::id()));
    model.save_checkpoint(&tmp)?;
    std::fs::rename(&tmp, out.file(CHECKPOINT_FILE)).context("cannot move checkpoint into place")
}
