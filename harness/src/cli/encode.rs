//! `ptv2 encode`: token ids and last hidden states as JSON, so anyone can check parity against
//! their own transformers install.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::tensor::Tensor;
use clap::Args;
use serde::Serialize;

use ptv2_models::{backend, resolve_model, EncoderOutput, Pretrained, Prompts, TokenBatch};

use super::args::MachineArgs;

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

#[derive(Serialize)]
struct EncodedText {
    text: String,
    pair: Option<String>,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    /// `[tokens][hidden]`, real tokens only.
    last_hidden_state: Vec<Vec<f32>>,
    pooled: Option<Vec<f32>>,
}

#[derive(Serialize)]
struct EncodeOutput {
    model: String,
    model_dir: String,
    layers: usize,
    device: String,
    inputs: Vec<EncodedText>,
}

pub fn run(args: &EncodeArgs) -> Result<()> {
    if !args.pairs.is_empty() && args.pairs.len() != args.texts.len() {
        bail!(
            "--pair given {} times but --text {} times: give one --pair per --text, or none",
            args.pairs.len(),
            args.texts.len()
        );
    }
    let device = backend::device_by_name(&args.machine.device)?;
    let spec = resolve_model(&args.model, &args.machine.cache_dir())?;
    let model = Pretrained::load(&spec, args.max_len, &device)
        .with_context(|| format!("loading model {}", args.model))?;

    let texts: Vec<(String, Option<String>)> = args
        .texts
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), args.pairs.get(i).cloned()))
        .collect();
    let batch = model.text.encode_batch(&texts)?;
    let output = model
        .encoder
        .forward(&batch.to_input(&device), &Prompts::none());

    let [n, _, hidden] = output.last_hidden_state.dims();
    let inputs = encoded_texts(texts, &batch, output);
    debug_assert_eq!(n, args.texts.len());
    let out = EncodeOutput {
        model: args.model.clone(),
        model_dir: spec.dir.display().to_string(),
        layers: model.config.num_hidden_layers,
        device: backend::describe(&device),
        inputs,
    };
    crate::records::io::write_json(&args.out, &out)?;
    eprintln!(
        "wrote {} ({} texts, hidden {hidden})",
        args.out.display(),
        args.texts.len()
    );
    Ok(())
}

/// Each input's real tokens (padding cut off) with their hidden states and pooled output.
fn encoded_texts(
    texts: Vec<(String, Option<String>)>,
    batch: &TokenBatch,
    output: EncoderOutput,
) -> Vec<EncodedText> {
    let [_, seq, hidden] = output.last_hidden_state.dims();
    let states = to_vec(output.last_hidden_state);
    let pooled = output.pooled.map(to_vec);
    texts
        .into_iter()
        .enumerate()
        .map(|(i, (text, pair))| {
            let real = batch.attention_mask[i].iter().filter(|&&m| m == 1).count();
            EncodedText {
                text,
                pair,
                input_ids: batch.input_ids[i][..real].to_vec(),
                token_type_ids: batch.token_type_ids[i][..real].to_vec(),
                last_hidden_state: (0..real)
                    .map(|t| states[(i * seq + t) * hidden..(i * seq + t + 1) * hidden].to_vec())
                    .collect(),
                pooled: pooled
                    .as_ref()
                    .map(|p| p[i * hidden..(i + 1) * hidden].to_vec()),
            }
        })
        .collect()
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 tensor")
}
