//! ptv2-harness: task readers, metrics, the training loop, sweeps and their reports, and the
//! commands of the `ptv2` binary. The layers are the folders, bottom first (a module uses only
//! its own layer and those below; `tests/code_shape.rs` reads the folders and checks it):
//!
//! 1. `records`: what a run is and leaves on disk (settings, run dirs, files, metrics);
//! 2. `run`: one run (tasks, the training loop, resume, replay in PyTorch);
//! 3. `reporting`: tables, statistics, charts and reports, reading records only;
//!    `orchestration`: many runs (sweeps, the runner, claims, Slurm);
//!    `serving`: trained runs put to use (the HTTP server, PEFT import/export);
//!    `bench`: train steps beside PyTorch's, the server under load;
//! 4. `cli`: the commands, each a thin file of arguments and a call.

pub mod bench;
pub mod cli;
pub mod orchestration;
pub mod records;
pub mod reporting;
pub mod run;
pub mod serving;
