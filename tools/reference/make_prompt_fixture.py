"""Discrete prompting's reference: a tiny random BertForMaskedLM with a WordPiece tokenizer, a
made-up sentiment task in SST-2's TSV format, and what transformers 4.46.3 predicts for each dev
sentence under LM-BFF's SST-2 template ("<S1> It was [MASK] .", label words terrible / great):
the masked-LM logits of the two label words at the [MASK]. Committed so ptv2's prompt test needs
no Python.

Run once (needs torch, transformers==4.46.3, tokenizers<0.21):
    python tools/reference/make_prompt_fixture.py --out harness/tests/fixtures/prompt

Writes model/ (config.json, model.safetensors, tokenizer.json), train.tsv, dev.tsv and
expected.json. The template is tokenized as LM-BFF does it: the sentence's tokens (cut at the
end when the whole would pass MAX_LEN, so that the [MASK] always stays), then the template's.
"""

import argparse
import json
import os

import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

torch.set_grad_enabled(False)

MAX_LEN = 16
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "it was . , ? ! this is a the an and but not very so too movie film story plot actors "
    "great terrible good bad fun boring dull funny awful lovely wonderful mess smart slow "
    "yes no maybe correct incorrect i loved hated every minute of watching ##s ##ly"
).split()

TRAIN = [
    ("a great movie", 1), ("a terrible film", 0), ("lovely and funny", 1), ("dull and slow", 0),
    ("i loved every minute of it", 1), ("i hated every minute of it", 0), ("so smart", 1),
    ("an awful mess", 0), ("wonderful actors", 1), ("boring plot", 0), ("very good story", 1),
    ("too slow and too dull", 0),
]
DEV = [
    ("a wonderful film", 1), ("the plot was a mess", 0), ("good fun", 1), ("not funny", 0),
    ("it is great", 1), ("terrible actors and a boring story", 0), ("smart and lovely", 1),
    ("slow", 0),
    # Longer than MAX_LEN with the template: its tail is cut, the [MASK] stays.
    ("the actors were good but the story was slow and the plot was dull and too long", 0),
]


def tokenizer():
    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return BertTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
        cls_token="[CLS]", mask_token="[MASK]",
    )


def templated_ids(tok, sentence):
    """[CLS] sentence It was [MASK] . [SEP], the sentence cut at its end to fit MAX_LEN."""
    words = tok(sentence, add_special_tokens=False)["input_ids"]
    tail = tok(" It was", add_special_tokens=False)["input_ids"] + [tok.mask_token_id] + tok(
        " .", add_special_tokens=False
    )["input_ids"]
    words = words[: MAX_LEN - 2 - len(tail)]
    ids = [tok.cls_token_id] + words + tail + [tok.sep_token_id]
    # LM-BFF's whole-string form gives the same ids where nothing is cut.
    whole = tok(f"{sentence} It was [MASK] .")["input_ids"]
    assert len(whole) > MAX_LEN or whole == ids, (whole, ids)
    return ids


def write_tsv(path, rows):
    with open(path, "w") as f:
        f.write("sentence\tlabel\n")
        for text, label in rows:
            f.write(f"{text}\t{label}\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    tok = tokenizer()
    config = BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=64,
    )
    torch.manual_seed(5)
    model = BertForMaskedLM(config).eval()
    for param in model.parameters():
        param.add_(torch.randn_like(param) * 0.05)
    os.makedirs(f"{out}/model", exist_ok=True)
    model.save_pretrained(f"{out}/model")
    os.remove(f"{out}/model/generation_config.json")  # not a file ptv2 reads
    tok.backend_tokenizer.save(f"{out}/model/tokenizer.json")
    write_tsv(f"{out}/train.tsv", TRAIN)
    write_tsv(f"{out}/dev.tsv", DEV)
    label_ids = [tok.convert_tokens_to_ids(w) for w in ["terrible", "great"]]
    expected = []
    for text, label in DEV:
        ids = templated_ids(tok, text)
        logits = model(input_ids=torch.tensor([ids])).logits[0]
        at_mask = logits[ids.index(tok.mask_token_id), label_ids]
        expected.append({"text": text, "label": label, "input_ids": ids, "logits": at_mask.tolist()})
    with open(f"{out}/expected.json", "w") as f:
        json.dump({"max_len": MAX_LEN, "label_words": ["terrible", "great"], "dev": expected}, f, indent=1)


if __name__ == "__main__":
    main()
