"""Masked-LM heads: tiny random BERT / RoBERTa / DeBERTa-v2 `…ForMaskedLM` dirs and their logits
from transformers 4.46.3, committed so ptv2's MLM-head parity tests need no Python.

Run once (needs torch, transformers==4.46.3, safetensors):
    python tools/reference/make_mlm_fixtures.py --out models/tests/fixtures

Writes mlm_bert/, mlm_roberta/, mlm_deberta_v2/: config.json and model.safetensors as
`save_pretrained` writes them (the decoder is tied to the word embeddings, so only the encoder's
copy is saved) and outputs.json: a padded batch (input_ids, attention_mask, token_type_ids) and
the model's MLM logits [batch, seq, vocab]. Every weight is the model's own random init plus
N(0, 0.05) noise, so LayerNorm scales, biases and the output bias all matter.
"""

import argparse
import json
import os

import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    DebertaV2Config,
    DebertaV2ForMaskedLM,
    RobertaConfig,
    RobertaForMaskedLM,
)

torch.set_grad_enabled(False)

SIZES = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)

MODELS = {
    "mlm_bert": (BertConfig(**SIZES, max_position_embeddings=64), BertForMaskedLM),
    "mlm_roberta": (
        RobertaConfig(**SIZES, max_position_embeddings=66, pad_token_id=1, bos_token_id=0, eos_token_id=2),
        RobertaForMaskedLM,
    ),
    "mlm_deberta_v2": (
        DebertaV2Config(
            **SIZES, max_position_embeddings=64, relative_attention=True, position_buckets=8,
            max_relative_positions=-1, norm_rel_ebd="layer_norm", share_att_key=True,
            pos_att_type=["p2c", "c2p"], position_biased_input=False, type_vocab_size=0,
            layer_norm_eps=1e-7,
        ),
        DebertaV2ForMaskedLM,
    ),
}

# Two sequences, the second padded (RoBERTa's pad id is 1, the others' 0).
IDS = [[3, 17, 25, 4, 9, 44, 5], [3, 30, 12, 58, 5, None, None]]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    for name, (config, cls) in MODELS.items():
        torch.manual_seed(11)
        model = cls(config).eval()
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
        pad = config.pad_token_id
        input_ids = torch.tensor([[pad if i is None else i for i in row] for row in IDS])
        attention_mask = torch.tensor([[0 if i is None else 1 for i in row] for row in IDS])
        token_type_ids = torch.zeros_like(input_ids)
        logits = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        path = os.path.join(out, name)
        model.save_pretrained(path)
        outputs = {
            "input_ids": input_ids.tolist(),
            "attention_mask": attention_mask.tolist(),
            "token_type_ids": token_type_ids.tolist(),
            "logits": logits.tolist(),
        }
        with open(os.path.join(path, "outputs.json"), "w") as f:
            json.dump(outputs, f, separators=(",", ":"))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
