//! The `ptv2` command line: one file per subcommand, each with its arguments and its `run`, and
//! the arguments they share (where models, data and sweeps are).

pub mod bench;
pub mod bench_serve;
pub mod check;
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
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::records::run_dir::{PlannedRun, SweepDir};
use crate::run::train::RunEnv;

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
    Train(train::TrainArgs),
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
        }
    }
}

/// Where embedded models are cached and what computes.
#[derive(Args, Debug, Clone)]
pub struct MachineArgs {
    /// Where embedded models are fetched to [default: $PTV2_CACHE or ~/.cache/ptv2].
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
    /// cpu (burn flex backend), wgpu / vulkan (builds with the wgpu / vulkan feature) or cuda
    /// (builds with the cuda feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl MachineArgs {
    pub fn cache_dir(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(ptv2_models::hub::default_cache_dir)
    }

    /// Where one run in `dir` reads and writes; `verbose` draws its progress and epoch lines.
    pub fn run_env(&self, data: &DataArgs, dir: &Path, verbose: bool) -> Result<RunEnv> {
        Ok(RunEnv {
            cache: self.cache_dir(),
            device: self.device.clone(),
            data_dir: data.dir()?,
            out: dir.to_path_buf(),
            progress: verbose.then(indicatif::MultiProgress::new),
            verbose,
        })
    }
}

/// Where the benchmark files are.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Benchmark data dir [default: $PTV2_DATA or ../shared/data].
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    pub fn dir(&self) -> Result<PathBuf> {
        crate::records::data::resolve_data_dir(self.data.as_deref())
    }
}

/// A sweep and where its files are.
#[derive(Args, Debug, Clone)]
pub struct SweepPaths {
    /// Sweep name (`experiments/NAME.toml`) or a path to a sweep TOML file.
    pub name: String,
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    /// Results go to REPORTS/NAME/.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
}

impl SweepPaths {
    /// The sweep's TOML file: `experiments/NAME.toml`, or the argument when it is a path.
    pub fn file(&self) -> PathBuf {
        if self.name.ends_with(".toml") {
            PathBuf::from(&self.name)
        } else {
            self.experiments.join(format!("{}.toml", self.name))
        }
    }

    /// Its name (the reports dir): the file stem of a path, else the argument.
    pub fn sweep_name(&self) -> String {
        Path::new(&self.name)
            .file_stem()
            .map_or_else(|| self.name.clone(), |s| s.to_string_lossy().to_string())
    }

    pub fn dir(&self) -> SweepDir {
        SweepDir(self.reports.join(self.sweep_name()))
    }

    /// Its runs; run dirs of an older id scheme are renamed to their ids now first.
    pub fn runs(&self) -> Result<Vec<PlannedRun>> {
        let path = self.file();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read sweep file {}", path.display()))?;
        let runs = crate::orchestration::sweep::expand(&text, &path.display().to_string())?;
        let moved = self.dir().adopt_older_runs()?;
        if moved > 0 {
            eprintln!("renamed {moved} run dirs of an older ptv2 to their ids now");
        }
        Ok(runs)
    }
}
