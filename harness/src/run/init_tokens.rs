//! Which real tokens a `vocab` or `text:` prompt/prefix init starts from. The model computes
//! their word embeddings (PT) or key/value projections (PT2) (`ptv2_models::PromptInit`).

use std::collections::HashMap;

use anyhow::{bail, Result};
use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use ptv2_models::{PromptInit, TextEncoder};

use crate::run::tasks::Task;

/// `vocab` draws from this many of the training texts' most frequent tokens (Lester et al. sample
/// from the 5,000 most common tokens of the vocabulary).
const FREQUENT: usize = 5000;
/// Training units read to count token frequencies.
const COUNTED: usize = 5000;

/// `[CLS] t_1 … t_P [SEP]` (the model's own special tokens) for a real-token init, or None for
/// a random one. `vocab` samples with `seed`, so each seed starts from other tokens.
pub fn init_tokens(
    init: &PromptInit,
    prompt_len: usize,
    seed: u64,
    task: &dyn Task,
    text: &TextEncoder,
) -> Result<Option<Vec<i64>>> {
    let tokens = match init {
        PromptInit::Random | PromptInit::Normal(_) => return Ok(None),
        PromptInit::Text(words) => content_tokens(words, text)?,
        PromptInit::Vocab => {
            let mut frequent = frequent_tokens(task, text)?;
            frequent.truncate(FREQUENT);
            frequent.shuffle(&mut StdRng::seed_from_u64(seed));
            frequent
        }
    };
    if tokens.is_empty() {
        bail!("init {init}: no tokens to start from");
    }
    let (first, last) = special_ends(text)?;
    let mut ids = vec![first];
    ids.extend(tokens.iter().cycle().take(prompt_len).copied());
    ids.push(last);
    Ok(Some(ids.into_iter().map(i64::from).collect()))
}

/// The tokens of `words` without the special tokens around them.
fn content_tokens(words: &str, text: &TextEncoder) -> Result<Vec<u32>> {
    let batch = text.encode_batch(&[(words.to_string(), None)])?;
    Ok(batch.input_ids[0]
        .iter()
        .zip(&batch.sequence_ids[0])
        .filter(|(_, sequence)| sequence.is_some())
        .map(|(&id, _)| id)
        .collect())
}

/// The special tokens that open and close a single text (`[CLS]`/`[SEP]`, `<s>`/`</s>`).
fn special_ends(text: &TextEncoder) -> Result<(u32, u32)> {
    let ids = &text.encode_batch(&[(String::new(), None)])?.input_ids[0];
    match (ids.first(), ids.last()) {
        (Some(&first), Some(&last)) if ids.len() >= 2 => Ok((first, last)),
        _ => bail!("the tokenizer adds no special tokens around a text"),
    }
}

fn unreadable(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow::anyhow!("cannot read token ids back: {e:?}")
}

/// The training texts' tokens, most frequent first (ties by id), special tokens left out.
fn frequent_tokens(task: &dyn Task, text: &TextEncoder) -> Result<Vec<u32>> {
    let special: Vec<u32> = text
        .inner()
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, token)| token.special)
        .map(|(id, _)| id)
        .collect();
    let indices: Vec<usize> = (0..task.train_len().min(COUNTED)).collect();
    let device = Device::flex();
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for chunk in indices.chunks(256) {
        let input = task.train_batch(chunk, text, &device)?.input;
        let ids = input
            .input_ids
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>();
        let mask = input
            .attention_mask
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>();
        let (ids, mask) = (ids.map_err(unreadable)?, mask.map_err(unreadable)?);
        for (id, m) in ids.into_iter().zip(mask) {
            let id = id as u32;
            if m == 1 && !special.contains(&id) {
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    let mut ranked: Vec<(u32, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(ranked.into_iter().map(|(id, _)| id).collect())
}
