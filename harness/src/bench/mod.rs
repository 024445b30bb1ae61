//! Benchmarks: a train step, an evaluation batch and a checkpoint measured beside PyTorch's
//! (`ptv2 bench`), `ptv2 serve` under load (`ptv2 bench-serve`), and sweeps priced by the bench
//! rows (`ptv2 sweep --dry-run`).

pub mod estimate;
pub mod serve_load;
pub mod train_step;
