//! Many runs: sweep files expanded into runs, the runner and its workers, claims, Slurm arrays.

pub mod claims;
pub mod runner;
pub mod slurm;
pub mod sweep;
