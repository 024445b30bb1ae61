"""Reference outputs from PyTorch + transformers, committed as fixtures so ptv2's tests need no Python.

Run once (needs torch, transformers, safetensors):
    python tools/reference/make_fixtures.py --minilm ~/.cache/ptv2/models/minilm-l6 \
        --out models/tests/fixtures

Writes:
  minilm_plain.json     token ids (HF tokenizer) and last hidden states / pooled output (HF BertModel)
                        for single sentences, sentence pairs and one padded batch of different lengths
  minilm_prompts.json   the same model with a fixed prefix (P-tuning v2: per-layer K/V) and with
                        fixed input prompts (prompt tuning), computed by explicit PyTorch code on the
                        HF weights (the explicit code is first checked against HF BertModel itself),
                        and the logits of a fixed classification head on top of each
  tiny_roberta/         a tiny random RoBERTa (config.json + model.safetensors) and its outputs on a
                        padded batch, plain and with a prefix (RoBERTa's padding-offset position rule)

Prefix and prompt values come from a formula both sides can compute (see `formula`), so they need
not be stored.
"""

import argparse
import json
import math
import os

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertModel, RobertaConfig, RobertaModel

torch.set_grad_enabled(False)

SINGLES = [
    "The cat sat on the mat.",
    "P-tuning v2 matches fine-tuning across scales and tasks!",
    "Crème brûlée, naïve café — déjà vu.",
]
PAIRS = [
    ("A man is playing a guitar.", "Someone plays an instrument."),
    ("Is the sky blue?", "The sky is blue on a clear day because of Rayleigh scattering."),
]
PADDED_BATCH = [
    "Short.",
    "A somewhat longer sentence that needs more tokens than the first one does.",
    "Medium length sentence here.",
]
PREFIX_LEN = 4
PROMPT_LEN = 3


def formula(rows, cols, seed):
    """value[r, c] = 0.5 * sin(0.37 * (r * cols + c) + seed), in float64 then float32."""
    index = torch.arange(rows * cols, dtype=torch.float64).reshape(rows, cols)
    return (0.5 * torch.sin(0.37 * index + seed)).to(torch.float32)


def flat_prefix(model, p):
    cfg = model.config
    return formula(p, cfg.num_hidden_layers * 2 * cfg.hidden_size, 0.1)


def split_prefix(flat, model):
    """THUDM/PEFT layout: view(B,P,2L,nh,hd).permute(2,0,3,1,4).split(2) -> per layer (key, value)."""
    cfg = model.config
    nh = cfg.num_attention_heads
    hd = cfg.hidden_size // nh
    p = flat.shape[0]
    kv = flat.view(1, p, 2 * cfg.num_hidden_layers, nh, hd).permute(2, 0, 3, 1, 4).split(2)
    return [(pair[0], pair[1]) for pair in kv]


def explicit_forward(model, ids, mask, types, prefix=None):
    """BERT/RoBERTa written out, with per-layer K/V prefixes concatenated before the tokens' K/V.

    HF conventions (reference notes §1.3): prefix columns always visible, real-token positions
    offset by P, additive mask -10000, queries only for real tokens.
    """
    cfg = model.config
    b, n = ids.shape
    p = 0 if prefix is None else prefix[0][0].shape[2]
    emb = model.embeddings
    if isinstance(model, RobertaModel):
        pad = cfg.pad_token_id
        m = ids.ne(pad).int()
        positions = (torch.cumsum(m, 1) + p) * m + pad
    else:
        positions = torch.arange(p, p + n).expand(b, n)
    x = emb.word_embeddings(ids) + emb.position_embeddings(positions) + emb.token_type_embeddings(types)
    x = emb.LayerNorm(x)
    full_mask = torch.cat([torch.ones(b, p), mask.float()], 1)
    additive = (1.0 - full_mask)[:, None, None, :] * -10000.0
    nh = cfg.num_attention_heads
    hd = cfg.hidden_size // nh
    for i, layer in enumerate(model.encoder.layer):
        sa = layer.attention.self
        q = sa.query(x).view(b, n, nh, hd).transpose(1, 2)
        k = sa.key(x).view(b, n, nh, hd).transpose(1, 2)
        v = sa.value(x).view(b, n, nh, hd).transpose(1, 2)
        if prefix is not None:
            pk, pv = prefix[i]
            k = torch.cat([pk.expand(b, -1, -1, -1), k], 2)
            v = torch.cat([pv.expand(b, -1, -1, -1), v], 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + additive
        ctx = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(b, n, cfg.hidden_size)
        a = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + x)
        inner = torch.nn.functional.gelu(layer.intermediate.dense(a))
        x = layer.output.LayerNorm(layer.output.dense(inner) + a)
    pooled = torch.tanh(model.pooler.dense(x[:, 0])) if model.pooler is not None else None
    return x, pooled


def prompt_forward(model, ids, mask, types, prompt):
    """Prompt tuning (Lester; PEFT's way): prompts stand in for word embeddings before the tokens,
    then one ordinary HF embedding pass (positions 0.., token type 0). Real tokens' outputs only."""
    b, n = ids.shape
    p = prompt.shape[0]
    words = model.embeddings.word_embeddings(ids)
    embeds = torch.cat([prompt.unsqueeze(0).expand(b, -1, -1), words], 1)
    out = model(
        inputs_embeds=embeds,
        attention_mask=torch.cat([torch.ones(b, p, dtype=mask.dtype), mask], 1),
        token_type_ids=torch.cat([torch.zeros(b, p, dtype=types.dtype), types], 1),
    )
    return out.last_hidden_state[:, p:]


def rounded(t):
    """Nested lists rounded to 5 decimals: 5e-6 of rounding against the tests' 1e-4 tolerance."""
    return torch.round(t.double(), decimals=5).tolist()


def rows(hidden, mask):
    """Per example, the hidden states of its real tokens as nested lists."""
    return [rounded(h[: int(m.sum())]) for h, m in zip(hidden, mask)]


def tokenize(tok, texts, pairs=None):
    if pairs is None:
        return tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    return tok(texts, pairs, padding=True, truncation=True, max_length=128, return_tensors="pt")


def case(tok, model, name, texts, pairs=None):
    enc = tokenize(tok, texts, pairs)
    out = model(**enc)
    mine, mine_pooled = explicit_forward(model, enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    diff = (mine - out.last_hidden_state)[enc["attention_mask"].bool()].abs().max().item()
    assert diff < 1e-5, f"explicit forward differs from HF BertModel by {diff}"
    return {
        "name": name,
        "texts": texts,
        "pairs": pairs,
        "input_ids": enc["input_ids"].tolist(),
        "token_type_ids": enc["token_type_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        "last_hidden_state": rows(out.last_hidden_state, enc["attention_mask"]),
        "pooled": rounded(out.pooler_output),
        "explicit_vs_hf_max_abs": diff,
    }


def minilm_fixtures(model_dir, out_dir):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    plain = {
        "model": "minilm-l6",
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "cases": [
            case(tok, model, f"single_{i}", [t]) for i, t in enumerate(SINGLES)
        ]
        + [case(tok, model, f"pair_{i}", [a], [b]) for i, (a, b) in enumerate(PAIRS)]
        + [case(tok, model, "padded_batch", PADDED_BATCH)],
    }
    write(out_dir, "minilm_plain.json", plain)

    enc = tokenize(tok, PADDED_BATCH)
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    prefix = split_prefix(flat_prefix(model, PREFIX_LEN), model)
    prefixed, prefixed_pooled = explicit_forward(model, ids, mask, types, prefix)
    prompt = formula(PROMPT_LEN, model.config.hidden_size, 0.7)
    prompted = prompt_forward(model, ids, mask, types, prompt)
    # A fixed 2-class head on the pooled [CLS] of the real tokens (THUDM's reading; PEFT's
    # BertForSequenceClassification would pool the first virtual token instead).
    head_weight = 0.2 * formula(2, model.config.hidden_size, 1.3)
    head_bias = torch.tensor([0.05, -0.05])
    prompted_pooled = torch.tanh(model.pooler.dense(prompted[:, 0]))
    pt2_logits = prefixed_pooled @ head_weight.T + head_bias
    pt_logits = prompted_pooled @ head_weight.T + head_bias
    write(out_dir, "minilm_prompts.json", {
        "texts": PADDED_BATCH,
        "input_ids": ids.tolist(),
        "token_type_ids": types.tolist(),
        "attention_mask": mask.tolist(),
        "prefix_len": PREFIX_LEN,
        "prefix_formula_seed": 0.1,
        "prefix_last_hidden_state": rows(prefixed, mask),
        "prefix_pooled": rounded(prefixed_pooled),
        "prompt_len": PROMPT_LEN,
        "prompt_formula_seed": 0.7,
        "prompt_last_hidden_state": rows(prompted, mask),
        "head_formula": "0.2 * formula(2, hidden, 1.3); bias [0.05, -0.05]",
        "pt2_logits": rounded(pt2_logits),
        "pt_logits": rounded(pt_logits),
    })


def tiny_roberta_fixtures(out_dir):
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=40, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
    )
    model = RobertaModel(config, add_pooling_layer=True).eval()
    model.config._attn_implementation = "eager"
    # Give LayerNorms and biases non-trivial values so a wrong mapping cannot hide.
    for name, param in model.named_parameters():
        if "LayerNorm" in name or name.endswith("bias"):
            param.copy_(param + 0.1 * torch.randn_like(param))
    target = os.path.join(out_dir, "tiny_roberta")
    os.makedirs(target, exist_ok=True)
    config.save_pretrained(target)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(target, "model.safetensors"), metadata={"format": "pt"})

    # <s>=0 ... </s>=2, padding 1 on the right; lengths 7, 4, 9.
    ids = torch.tensor([
        [0, 5, 17, 33, 8, 9, 2, 1, 1],
        [0, 44, 12, 2, 1, 1, 1, 1, 1],
        [0, 3, 4, 6, 7, 10, 11, 13, 2],
    ])
    mask = ids.ne(1).long()
    types = torch.zeros_like(ids)
    hf = model(input_ids=ids, attention_mask=mask)
    mine, _ = explicit_forward(model, ids, mask, types)
    diff = (mine - hf.last_hidden_state)[mask.bool()].abs().max().item()
    assert diff < 1e-5, f"explicit forward differs from HF RobertaModel by {diff}"
    prefix = split_prefix(flat_prefix(model, PREFIX_LEN), model)
    prefixed, _ = explicit_forward(model, ids, mask, types, prefix)
    write(target, "outputs.json", {
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "last_hidden_state": rows(hf.last_hidden_state, mask),
        "pooled": rounded(hf.pooler_output),
        "prefix_len": PREFIX_LEN,
        "prefix_formula_seed": 0.1,
        "prefix_last_hidden_state": rows(prefixed, mask),
        "explicit_vs_hf_max_abs": diff,
    })


def write(out_dir, name, value):
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        json.dump(value, f, separators=(",", ":"))
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--minilm", required=True, help="MiniLM-L6 model dir")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    minilm_fixtures(args.minilm, args.out)
    tiny_roberta_fixtures(args.out)
