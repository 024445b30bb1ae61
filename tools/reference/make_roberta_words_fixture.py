"""A tiny byte-level BPE tokenizer (RoBERTa's kind) and what transformers makes of pre-split words
with it, committed so ptv2's tokenizer test needs no Python.

Run once (needs transformers==4.46.3, tokenizers<0.21):
    python tools/reference/make_roberta_words_fixture.py --out models/tests/fixtures/roberta_words

Trains a 400-token ByteLevelBPE on four CoNLL-2003-like lines (no real RoBERTa vocabulary is
reachable here), adds RoBERTa's post-processor (<s> … </s>), and writes
  tokenizer.json   the tokenizer as ptv2 reads it (add_prefix_space false, as roberta-large's)
  words.json       pre-split sentences and RobertaTokenizerFast(add_prefix_space=True)'s
                   input_ids and word_ids for them (`is_split_into_words=True`: the reference's
                   NER tokenisation; transformers refuses pre-split words without it)
"""

import argparse
import json
import os

from tokenizers import ByteLevelBPETokenizer, processors
from transformers import RobertaTokenizerFast

TEXTS = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    "BRUSSELS 1996-08-22",
    "The European Commission said on Thursday it disagreed with German advice to consumers to "
    "shun British lamb until scientists determine whether mad cow disease can be transmitted to sheep .",
] * 3
WORDS = [
    ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    ["Peter", "Blackburn"],
    ["BRUSSELS", "1996-08-22"],
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    os.makedirs(out, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        TEXTS, vocab_size=400, min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe._tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), add_prefix_space=False, trim_offsets=True
    )
    path = os.path.join(out, "tokenizer.json")
    bpe.save(path)
    tokenizer = RobertaTokenizerFast(tokenizer_file=path, add_prefix_space=True)
    expected = {"words": WORDS, "encodings": []}
    for words in WORDS:
        encoding = tokenizer(words, is_split_into_words=True)
        expected["encodings"].append(
            {"input_ids": encoding["input_ids"], "word_ids": encoding.word_ids()}
        )
    with open(os.path.join(out, "words.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
