//! Many runs: sweep files expanded into runs, the runner and its workers, claims, Slurm arrays.

pub mod claims;
pub mod plan;
pub mod runner;
pub mod search;
pub mod search_run;
pub mod slurm;
pub mod sweep;
