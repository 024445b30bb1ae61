//! Benchmarks: a train step, an evaluation batch and a checkpoint measured beside PyTorch's
//! (`ptv2 bench`), and `ptv2 serve` under load (`ptv2 bench-serve`).

pub mod serve_load;
pub mod train_step;
