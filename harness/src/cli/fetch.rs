//! `ptv2 fetch`: fetch an embedded model into the cache and print its model dir.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct FetchArgs {
    #[arg(default_value = ptv2_models::DEFAULT_MODEL)]
    pub model: String,
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
}

pub fn run(args: &FetchArgs) -> Result<()> {
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(ptv2_models::hub::default_cache_dir);
    let spec = ptv2_models::resolve_model(&args.model, &cache)?;
    println!("{}", spec.dir.display());
    Ok(())
}
