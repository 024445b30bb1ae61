//! Trained runs put to use: the HTTP server and PEFT adapter import/export.

pub mod peft;
pub mod serve;
