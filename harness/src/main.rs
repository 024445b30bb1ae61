//! `ptv2`: the command line of the P-tuning v2 reproduction harness.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod encode;
mod io;

#[derive(Parser)]
#[command(name = "ptv2", version, about = "Deep prompt tuning (P-tuning v2) vs fine-tuning vs prompt tuning, reproduced in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encode texts with a model and write token ids and last hidden states as JSON (for parity checks).
    Encode(encode::EncodeArgs),
    /// Fetch a model (if it is an embedded one) and print its model dir.
    Fetch {
        #[arg(default_value = ptv2_models::DEFAULT_MODEL)]
        model: String,
        #[arg(long, env = "PTV2_CACHE")]
        cache: Option<PathBuf>,
    },
}

/// How a command finds its model and where it runs.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A Hugging Face model dir, or an embedded model name (`minilm-l6`, `minilm-l6@2` = first 2 layers).
    #[arg(long, default_value = ptv2_models::DEFAULT_MODEL)]
    pub model: String,
    /// Where embedded models are fetched to [default: $PTV2_CACHE or ~/.cache/ptv2].
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
    /// cpu (burn flex backend) or cuda (builds with the cuda feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Maximum tokens per input (longest-first truncation).
    #[arg(long, default_value_t = 512)]
    pub max_len: usize,
}

impl ModelArgs {
    pub fn cache_dir(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(ptv2_models::hub::default_cache_dir)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Encode(args) => encode::run(&args),
        Command::Fetch { model, cache } => {
            let cache = cache.unwrap_or_else(ptv2_models::hub::default_cache_dir);
            ptv2_models::resolve_model(&model, &cache)
                .map(|spec| println!("{}", spec.dir.display()))
                .map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
