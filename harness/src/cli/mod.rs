//! The `ptv2` command line: one file per subcommand, each with its arguments and its `run`, and
//! the arguments they share (where models, data and sweeps are).

pub mod args;
pub mod bench;
pub mod bench_serve;
pub mod check;
pub mod commands;
pub mod encode;
pub mod eval;
pub mod fetch;
pub mod methods;
pub mod peft;
pub mod predict;
pub mod replay;
pub mod report;
pub mod score;
pub mod serve;
pub mod settings;
pub mod slurm;
pub mod sweep;
pub mod tasks;
pub mod train;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ptv2",
    version,
    about = "Deep prompt tuning (P-tuning v2) vs fine-tuning vs prompt tuning, reproduced in Rust"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encode texts with a model and write token ids and last hidden states as JSON (for parity checks).
    Encode(encode::EncodeArgs),
    /// Train one model × task × method run and write metrics.json, the checkpoint and predictions.
    Train(Box<train::TrainArgs>),
    /// Train a finished run again in PyTorch + transformers + PEFT and print both side by side.
    Replay(replay::ReplayArgs),
    /// Reload a run's checkpoint and score it on dev again.
    Eval(eval::EvalArgs),
    /// Score a predictions file against a task's dev split.
    Score(score::ScoreArgs),
    /// Label new inputs (JSONL in the task's shape) with a trained run.
    Predict(predict::PredictArgs),
    /// Write a PT2, PT or LoRA run as a PEFT adapter dir (PREFIX_TUNING / PROMPT_TUNING / LORA).
    ExportPeft(peft::ExportArgs),
    /// Make a ptv2 run dir of a PEFT adapter dir, for `ptv2 predict`, `eval` and `serve`.
    ImportPeft(peft::ImportArgs),
    /// Serve trained runs over HTTP; one frozen backbone, many tasks in one batch.
    Serve(serve::ServeArgs),
    /// Run a sweep (experiments/NAME.toml): what is not done yet, resumable, sharded.
    Sweep(sweep::SweepArgs),
    /// Rebuild a sweep's tables, charts and report.md from its runs, without training.
    Report(report::ReportArgs),
    /// Compare a sweep's scores with a committed baseline; exit non-zero on a regression.
    Check(check::CheckArgs),
    /// Submit a sweep as a Slurm job array (one task per shard).
    Slurm(slurm::SlurmArgs),
    /// Benchmark train steps, eval throughput, memory and checkpoint size of each method.
    Bench(bench::BenchArgs),
    /// Load-test `ptv2 serve`: mixed-task batches vs one task a batch vs FT models side by side.
    BenchServe(bench_serve::BenchServeArgs),
    /// Fetch a model (if it is an embedded one) and print its model dir.
    Fetch(fetch::FetchArgs),
    /// Print the table of run settings (sweep keys, `ptv2 train` flags) with their defaults.
    Settings,
    /// Print the table of tuning methods: what each trains, its prompts, its PEFT type.
    Methods,
    /// Print the table of tasks: family, files under the data dir, metric, labels.
    Tasks,
    /// Print every command with its arguments as markdown (docs/commands.md).
    Commands,
}

impl Cli {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Encode(args) => encode::run(&args),
            Command::Train(args) => train::run(&args),
            Command::Replay(args) => replay::run(&args),
            Command::Eval(args) => eval::run(&args),
            Command::Score(args) => score::run(&args),
            Command::Predict(args) => predict::run(&args),
            Command::Serve(args) => serve::run(&args),
            Command::ExportPeft(args) => peft::export(&args),
            Command::ImportPeft(args) => peft::import(&args),
            Command::Sweep(args) => sweep::run(&args),
            Command::Report(args) => report::run(&args),
            Command::Check(args) => check::run(&args),
            Command::Slurm(args) => slurm::run(&args),
            Command::Bench(args) => bench::run(&args),
            Command::BenchServe(args) => bench_serve::run(&args),
            Command::Fetch(args) => fetch::run(&args),
            Command::Settings => settings::run(),
            Command::Methods => methods::run(),
            Command::Tasks => tasks::run(),
            Command::Commands => commands::run(&Cli::command()),
        }
    }
}

/// A generated table or reference must stand in its doc file: the freshness tests of `ptv2
/// methods`, `ptv2 tasks` and `ptv2 commands`.
#[cfg(test)]
pub(crate) fn assert_doc_holds(doc: &str, generated: &str, command: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(doc);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        text.contains(generated),
        "{doc} is out of date; replace its part with `ptv2 {command}`:\n{generated}"
    );
}
