//! ptv2-harness: task readers, metrics, the training loop and the commands of the `ptv2` binary.

pub mod bench;
pub mod charts;
pub mod check;
pub mod commands;
pub mod data;
pub mod encode;
pub mod init_tokens;
pub mod io;
pub mod metrics;
pub mod optim;
pub mod report;
pub mod results;
pub mod runner;
pub mod slurm;
pub mod stats;
pub mod sweep;
pub mod table;
pub mod tasks;
pub mod train;
