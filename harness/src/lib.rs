//! ptv2-harness: task readers, metrics, the training loop, sweeps and their reports, and the
//! commands of the `ptv2` binary. Layers (a module uses only its own layer and those below;
//! `tests/layers.rs` checks it):
//!
//! 1. records: `records`, `settings`, `schedule`, `io`, `data`, `metrics`, `signals` — what a run
//!    is and leaves on disk;
//! 2. run: `tasks`, `optim`, `init_tokens`, `train`, `resume` — one run;
//! 3. reporting: `results`, `table`, `stats`, `charts`, `report`, `check` — read records only;
//!    orchestration: `sweep`, `runner`, `claims`, `slurm` — many runs;
//!    serving: `serve`, `peft` — trained runs put to use;
//! 4. `cli` — the commands.

pub mod charts;
pub mod check;
pub mod claims;
pub mod cli;
pub mod data;
pub mod init_tokens;
pub mod io;
pub mod metrics;
pub mod optim;
pub mod peft;
pub mod records;
pub mod replay;
pub mod report;
pub mod results;
pub mod resume;
pub mod runner;
pub mod schedule;
pub mod serve;
pub mod settings;
pub mod signals;
pub mod slurm;
pub mod stats;
pub mod sweep;
pub mod table;
pub mod tasks;
pub mod train;
