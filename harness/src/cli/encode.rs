//! `ptv2 encode`: token ids and last hidden states as JSON (`serving/encode.rs`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::args::MachineArgs;
use crate::serving::encode::{encode, EncodeRequest};

#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// A Hugging Face model dir, or an embedded model name (`minilm-l6`, `minilm-l6@2` = first 2 layers).
    #[arg(long, default_value = ptv2_models::DEFAULT_MODEL)]
    pub model: String,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// A text to encode (repeat for a batch).
    #[arg(long = "text", required = true)]
    pub texts: Vec<String>,
    /// The second text of a pair; give one --pair per --text.
    #[arg(long = "pair")]
    pub pairs: Vec<String>,
    /// Where to write the JSON.
    #[arg(long)]
    pub out: PathBuf,
    /// Maximum tokens per input (longest-first truncation).
    #[arg(long, default_value_t = 512)]
    pub max_len: usize,
}

pub fn run(args: &EncodeArgs) -> Result<()> {
    if !args.pairs.is_empty() && args.pairs.len() != args.texts.len() {
        bail!(
            "--pair given {} times but --text {} times: give one --pair per --text, or none",
            args.pairs.len(),
            args.texts.len()
        );
    }
    let texts = args
        .texts
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), args.pairs.get(i).cloned()))
        .collect();
    let output = encode(EncodeRequest {
        model: args.model.clone(),
        cache: args.machine.cache_dir(),
        device: args.machine.device.clone(),
        texts,
        max_len: args.max_len,
    })?;
    crate::records::io::write_json(&args.out, &output)?;
    eprintln!("wrote {} ({} texts)", args.out.display(), args.texts.len());
    Ok(())
}
