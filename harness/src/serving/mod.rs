//! Models put to use: the HTTP server, PEFT adapter import/export, and hidden states as JSON.

pub mod encode;
pub mod peft;
pub mod serve;
