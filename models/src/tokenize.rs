//! Text → token ids with the model dir's own `tokenizer.json` (the `tokenizers` crate, as HF does).
//!
//! Batches are padded to their longest member (HF `padding=True`), not to the fixed length some
//! `tokenizer.json` files carry, and truncated longest-first to `max_len`.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{
    EncodeInput, Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams,
    TruncationStrategy,
};

use crate::encoder::EncoderInput;
use crate::error::ModelError;

pub struct TextEncoder {
    tokenizer: Tokenizer,
    /// For pre-split words (NER): a byte-level BPE (RoBERTa) encodes each word as if after a
    /// space, `add_prefix_space=True`, which HF requires for `is_split_into_words` and the
    /// reference's NER scripts set; without it every word took its sentence-initial form.
    /// Other tokenizers (BERT's WordPiece) as they are.
    words_tokenizer: Tokenizer,
    path: PathBuf,
    max_len: usize,
}

/// One encoded batch, padded to the longest: `[batch][seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    pub input_ids: Vec<Vec<u32>>,
    pub token_type_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    /// Character offsets of each token in its text (0,0 for special tokens and padding).
    pub offsets: Vec<Vec<(usize, usize)>>,
    /// Which text of the pair each token came from (None for special tokens and padding).
    pub sequence_ids: Vec<Vec<Option<usize>>>,
    /// The word index of each token within its text (None for special tokens and padding).
    pub word_ids: Vec<Vec<Option<u32>>>,
}

impl TextEncoder {
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self, ModelError> {
        let fail = |message: String| ModelError::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path: path.to_path_buf(),
            });
        }
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| fail(e.to_string()))?;
        let pad = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..pad
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| fail(e.to_string()))?;
        let mut words_tokenizer = tokenizer.clone();
        if let Some(PreTokenizerWrapper::ByteLevel(byte_level)) =
            tokenizer.get_pre_tokenizer().cloned()
        {
            words_tokenizer.with_pre_tokenizer(Some(byte_level.add_prefix_space(true)));
        }
        Ok(Self {
            tokenizer,
            words_tokenizer,
            path: path.to_path_buf(),
            max_len,
        })
    }

    /// The truncation length of every encoded input.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn pad_id(&self) -> u32 {
        self.tokenizer.get_padding().map_or(0, |p| p.pad_id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encode texts, each alone or with a second text (a sentence pair).
    pub fn encode_batch(
        &self,
        texts: &[(String, Option<String>)],
    ) -> Result<TokenBatch, ModelError> {
        let inputs: Vec<EncodeInput> = texts
            .iter()
            .map(|(a, b)| match b {
                None => EncodeInput::from(a.as_str()),
                Some(b) => EncodeInput::from((a.as_str(), b.as_str())),
            })
            .collect();
        self.encode_inputs(inputs)
    }

    /// Encode with char offsets (as Python's fast tokenizers report them), padded to the longest.
    fn encode_inputs(&self, inputs: Vec<EncodeInput>) -> Result<TokenBatch, ModelError> {
        Self::encode_with(&self.tokenizer, &self.path, inputs)
    }

    fn encode_with(
        tokenizer: &Tokenizer,
        path: &Path,
        inputs: Vec<EncodeInput>,
    ) -> Result<TokenBatch, ModelError> {
        let encodings = tokenizer
            .encode_batch_char_offsets(inputs, true)
            .map_err(|e| ModelError::Tokenizer {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(TokenBatch::from_encodings(&encodings))
    }

    /// Encode sentences already split into words (NER); `word_ids` map tokens back to words.
    pub fn encode_words_batch(&self, sentences: &[Vec<String>]) -> Result<TokenBatch, ModelError> {
        let inputs: Vec<EncodeInput> = sentences
            .iter()
            .map(|words| EncodeInput::from(words.as_slice()))
            .collect();
        Self::encode_with(&self.words_tokenizer, &self.path, inputs)
    }
}

impl TokenBatch {
    pub fn from_encodings(encodings: &[Encoding]) -> Self {
        let sequence_ids = encodings
            .iter()
            .map(|e| (0..e.len()).map(|i| e.token_to_sequence(i)).collect())
            .collect();
        Self {
            input_ids: encodings.iter().map(|e| e.get_ids().to_vec()).collect(),
            token_type_ids: encodings
                .iter()
                .map(|e| e.get_type_ids().to_vec())
                .collect(),
            attention_mask: encodings
                .iter()
                .map(|e| e.get_attention_mask().to_vec())
                .collect(),
            offsets: encodings.iter().map(|e| e.get_offsets().to_vec()).collect(),
            sequence_ids,
            word_ids: encodings
                .iter()
                .map(|e| e.get_word_ids().to_vec())
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    pub fn seq_len(&self) -> usize {
        self.input_ids.first().map_or(0, Vec::len)
    }

    /// Tensors on `device`, `[batch, seq]` each.
    pub fn to_input(&self, device: &Device) -> EncoderInput {
        let to_tensor = |rows: &Vec<Vec<u32>>| {
            let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
            Tensor::<2, Int>::from_data(TensorData::new(flat, [self.len(), self.seq_len()]), device)
        };
        EncoderInput {
            input_ids: to_tensor(&self.input_ids),
            attention_mask: to_tensor(&self.attention_mask),
            token_type_ids: to_tensor(&self.token_type_ids),
        }
    }
}
