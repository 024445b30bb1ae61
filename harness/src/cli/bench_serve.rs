//! `ptv2 bench-serve`: `ptv2 serve` under a bounded load on loopback, PT2 runs on one backbone
//! against FT runs side by side (`bench/serve_load.rs`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::DataArgs;
use crate::bench::serve_load::{self, ServeLoad};

#[derive(Args, Debug)]
pub struct BenchServeArgs {
    /// PT2 run dirs of three tasks on one backbone, `[NAME=]DIR` comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub pt2: Vec<String>,
    /// FT run dirs of the same tasks, in the same order.
    #[arg(long, value_delimiter = ',', required = true)]
    pub ft: Vec<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Requests per client (bounded load: the test ends when all are answered).
    #[arg(long, default_value_t = 12)]
    pub requests: usize,
    /// Where bench_serve.md and bench_serve.json go.
    #[arg(long, default_value = "reports/bench-serve")]
    pub out: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: &BenchServeArgs) -> Result<()> {
    serve_load::run(&ServeLoad {
        pt2: args.pt2.clone(),
        ft: args.ft.clone(),
        clients: args.clients,
        requests: args.requests,
        out: args.out.clone(),
        data: args.data.data.clone(),
    })
}
