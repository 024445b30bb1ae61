//! Token ids and last hidden states of texts (`ptv2 encode` writes them as JSON), so anyone can
//! check parity against their own transformers install.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Tensor;
use serde::Serialize;

use ptv2_models::{backend, resolve_model, EncoderOutput, Pretrained, Prompts, TokenBatch};

/// What to encode, and with which model on which device.
pub struct EncodeRequest {
    /// A Hugging Face model dir or an embedded model name.
    pub model: String,
    pub cache: PathBuf,
    pub device: String,
    /// Each text with the second text of its pair, if any.
    pub texts: Vec<(String, Option<String>)>,
    /// Maximum tokens per input (longest-first truncation).
    pub max_len: usize,
}

#[derive(Serialize)]
pub struct EncodedText {
    text: String,
    pair: Option<String>,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    /// `[tokens][hidden]`, real tokens only.
    last_hidden_state: Vec<Vec<f32>>,
    pooled: Option<Vec<f32>>,
}

#[derive(Serialize)]
pub struct EncodeOutput {
    model: String,
    model_dir: String,
    layers: usize,
    device: String,
    inputs: Vec<EncodedText>,
}

/// The hidden states of `request.texts` under the pretrained model, no prompts.
pub fn encode(request: EncodeRequest) -> Result<EncodeOutput> {
    let device = backend::device_by_name(&request.device)?;
    let spec = resolve_model(&request.model, &request.cache)?;
    let model = Pretrained::load(&spec, request.max_len, &device)
        .with_context(|| format!("loading model {}", request.model))?;
    let batch = model.text.encode_batch(&request.texts)?;
    let output = model
        .encoder
        .forward(&batch.to_input(&device), &Prompts::none());
    Ok(EncodeOutput {
        model: request.model,
        model_dir: spec.dir.display().to_string(),
        layers: model.config.num_hidden_layers,
        device: backend::describe(&device),
        inputs: encoded_texts(request.texts, &batch, output),
    })
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
