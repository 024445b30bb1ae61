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

/// One piece of a templated input (`encode_pieces`).
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text, tokenized as written: a leading space is kept, which byte-level BPE and SentencePiece
    /// read as the start of a word. `cut`: its tokens may be cut at the end when the row passes
    /// `max_len` (an example's own text, never the template's words).
    Text { text: String, cut: bool },
    /// One token by id (the `[MASK]`).
    Token(u32),
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

    /// The id of the mask token (`[MASK]` of BERT and DeBERTa, `<mask>` of RoBERTa).
    pub fn mask_id(&self) -> Option<u32> {
        self.first_known(&["[MASK]", "<mask>"])
    }

    /// The id of the unknown token (`[UNK]`, `<unk>`).
    pub fn unk_id(&self) -> Option<u32> {
        self.first_known(&["[UNK]", "<unk>"])
    }

    fn first_known(&self, tokens: &[&str]) -> Option<u32> {
        tokens.iter().find_map(|t| self.tokenizer.token_to_id(t))
    }

    /// The token ids of `text` without special tokens.
    pub fn ids_of(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.encode_ids(text, false)
    }

    fn encode_ids(&self, text: &str, special_tokens: bool) -> Result<Vec<u32>, ModelError> {
        let encoding =
            self.tokenizer
                .encode(text, special_tokens)
                .map_err(|e| ModelError::Tokenizer {
                    path: self.path.clone(),
                    message: e.to_string(),
                })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Encode each row of pieces as one sequence, LM-BFF's way: the model's special tokens
    /// around the pieces' tokens; where a row passes `max_len`, its longest cuttable piece loses
    /// its last token until it fits, so that the template (and its `[MASK]`) always stays.
    pub fn encode_pieces(&self, rows: &[Vec<Piece>]) -> Result<TokenBatch, ModelError> {
        // The special tokens around a sequence: BERT's [CLS] … [SEP], RoBERTa's <s> … </s>.
        let specials = self.encode_ids("", true)?;
        let (open, close) = specials.split_at(specials.len().min(1));
        let budget = self.max_len.saturating_sub(specials.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            let mut parts = row
                .iter()
                .map(|piece| match piece {
                    Piece::Text { text, cut } => Ok((self.ids_of(text)?, *cut)),
                    Piece::Token(id) => Ok((vec![*id], false)),
                })
                .collect::<Result<Vec<_>, ModelError>>()?;
            let mut total: usize = parts.iter().map(|(p, _)| p.len()).sum();
            while total > budget {
                let Some((longest, _)) = parts
                    .iter_mut()
                    .filter(|(p, cut)| *cut && !p.is_empty())
                    .max_by_key(|(p, _)| p.len())
                else {
                    break;
                };
                longest.pop();
                total -= 1;
            }
            let body = parts.into_iter().flat_map(|(p, _)| p);
            ids.push(
                open.iter()
                    .copied()
                    .chain(body)
                    .chain(close.iter().copied())
                    .collect(),
            );
        }
        Ok(TokenBatch::from_ids(ids, self.pad_id()))
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

    /// Rows of token ids (one segment each), padded behind to the longest with `pad_id`.
    pub fn from_ids(rows: Vec<Vec<u32>>, pad_id: u32) -> Self {
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        let padded = |row: &Vec<u32>, real: u32, pad: u32| {
            let mut out = vec![real; row.len()];
            out.resize(longest, pad);
            out
        };
        Self {
            attention_mask: rows.iter().map(|r| padded(r, 1, 0)).collect(),
            token_type_ids: rows.iter().map(|r| padded(r, 0, 0)).collect(),
            offsets: rows.iter().map(|_| vec![(0, 0); longest]).collect(),
            sequence_ids: rows.iter().map(|_| vec![None; longest]).collect(),
            word_ids: rows.iter().map(|_| vec![None; longest]).collect(),
            input_ids: rows
                .into_iter()
                .map(|mut row| {
                    row.resize(longest, pad_id);
                    row
                })
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
