"""DeBERTa-v2/v3 reference outputs from transformers, committed so ptv2's tests need no Python.

Run once (needs torch, transformers 4.46, safetensors):
    python tools/reference/make_deberta_fixtures.py --out models/tests/fixtures

Writes two tiny random DeBERTa-v2 model dirs (config.json + model.safetensors + outputs.json):
  tiny_deberta_v2/   deberta-v2-xlarge's layout: log-bucket relative positions, shared c2p + p2c
                     keys, LayerNorm on the relative embeddings, the convolution after layer 0,
                     no absolute positions, no token types (deberta-v3 is the same without conv)
  tiny_deberta_abs/  the other branches: absolute positions and token types in the input,
                     clamped (not bucketed) relative positions, c2p only, no relative LayerNorm
and deberta_log_buckets.json: transformers' relative-position buckets for the real models' 256 buckets
over 512 positions, so the bucket rule is checked where the big models use it.

tiny_deberta_v2/ also gets a 60-token tokenizer.json (sentencepiece-style Metaspace words, [CLS] …
[SEP] as DeBERTa's), so the harness can train on the dir end to end; its ids mean nothing.

Each outputs.json holds a padded batch's last hidden states (HF DebertaV2Model), the same batch
with a fixed prefix attached as THUDM's DeBERTa-v2 prefix code does (`model/debertaV2.py`
DisentangledSelfAttention with past_key_value: the prefix K/V join the content scores and the
values, the relative-position bias covers the real tokens only and is zero on the prefix columns,
the query rows of the mask start after the prefix), and the logits of a fixed token head on that.
The prefix forward is written out below from THUDM's lines, checked first without a prefix
against HF's own DebertaV2Model; with a prefix it was checked once against THUDM's file itself
(imported under transformers 4.46 with `np.int` restored and its docstring decorators stubbed):
equal to 0.0 on both tiny models, apart from the embedding mask below. One deliberate difference: THUDM's copy feeds the embeddings an
all-ones mask (its `mask=attention_mask` is commented out because the mask grew by P); ptv2 keeps
HF's masking of padded embeddings, which matters only where the convolution reads a padded
neighbour.
"""

import argparse
import json
import math
import os

import torch
from safetensors.torch import save_file
from transformers import DebertaV2Config, DebertaV2Model
from transformers.models.deberta_v2.modeling_deberta_v2 import (
    XSoftmax,
    build_relative_position,
)

# The prefix formula and the writer of the other fixtures (this script's folder).
from make_fixtures import formula, write

torch.set_grad_enabled(False)

PREFIX_LEN = 3
HEAD_LABELS = 3

CONFIGS = {
    "tiny_deberta_v2": dict(
        relative_attention=True, position_buckets=8, max_relative_positions=-1,
        norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type="p2c|c2p",
        position_biased_input=False, type_vocab_size=0, conv_kernel_size=3, conv_act="gelu",
        layer_norm_eps=1e-7,
    ),
    "tiny_deberta_abs": dict(
        relative_attention=True, position_buckets=-1, max_relative_positions=6,
        norm_rel_ebd="none", share_att_key=True, pos_att_type=["c2p"],
        position_biased_input=True, type_vocab_size=2, layer_norm_eps=1e-7,
    ),
}


def split_heads(x, heads):
    b, s, h = x.shape
    return x.view(b, s, heads, h // heads).permute(0, 2, 1, 3).reshape(b * heads, s, h // heads)


def thudm_attention(att, hidden, mask4, relative_pos, rel_embeddings, prefix):
    """THUDM model/debertaV2.py DisentangledSelfAttention.forward with past_key_value (L607-660)."""
    heads = att.num_attention_heads
    p = prefix[0].shape[2] if prefix is not None else 0
    query = split_heads(att.query_proj(hidden), heads)
    key = split_heads(att.key_proj(hidden), heads)
    value = split_heads(att.value_proj(hidden), heads)
    key_with_prefix, value_with_prefix = key, value
    if prefix is not None:
        b = hidden.shape[0]
        flat = lambda t: t.expand(b, -1, -1, -1).reshape(-1, t.shape[2], t.shape[3])
        key_with_prefix = torch.cat([flat(prefix[0]), key], dim=1)
        value_with_prefix = torch.cat([flat(prefix[1]), value], dim=1)
    scale_factor = 1 + ("c2p" in att.pos_att_type) + ("p2c" in att.pos_att_type)
    scale = math.sqrt(query.size(-1) * scale_factor)
    scores = torch.bmm(query, key_with_prefix.transpose(-1, -2)) / scale
    rel_att = att.disentangled_attention_bias(query, key, relative_pos, rel_embeddings, scale_factor)
    if p:
        rel_att = torch.cat([torch.zeros(*rel_att.shape[:-1], p), rel_att], dim=-1)
    scores = (scores + rel_att).view(-1, heads, scores.size(-2), scores.size(-1))
    probs = XSoftmax.apply(scores, mask4[:, :, p:, :], -1)
    context = torch.bmm(probs.view(-1, probs.size(-2), probs.size(-1)), value_with_prefix)
    b = hidden.shape[0]
    return context.view(b, heads, -1, context.size(-1)).permute(0, 2, 1, 3).reshape(b, -1, hidden.shape[-1])


def explicit_forward(model, ids, mask, types, prefix_layers=None):
    """DebertaV2Model's forward step by step, with THUDM's prefix attention."""
    p = prefix_layers[0][0].shape[2] if prefix_layers else 0
    # THUDM offsets absolute positions by P, as HF's BERT does with past_key_values_length.
    positions = torch.arange(p, p + ids.shape[1]).unsqueeze(0)
    emb = model.embeddings(input_ids=ids, token_type_ids=types, position_ids=positions, mask=mask)
    full = torch.cat([torch.ones(ids.shape[0], p, dtype=mask.dtype), mask], dim=1)
    m = full.unsqueeze(1).unsqueeze(2)
    mask4 = (m * m.squeeze(-2).unsqueeze(-1)).byte()
    enc = model.encoder
    relative_pos = build_relative_position(ids.shape[1], ids.shape[1], enc.position_buckets, enc.max_relative_positions)
    rel_embeddings = enc.get_rel_embedding()
    hidden = emb
    for i, layer in enumerate(enc.layer):
        prefix = prefix_layers[i] if prefix_layers else None
        att = thudm_attention(layer.attention.self, hidden, mask4, relative_pos, rel_embeddings, prefix)
        att = layer.attention.output(att, hidden)
        out = layer.output(layer.intermediate(att), att)
        if i == 0 and enc.conv is not None:
            out = enc.conv(emb, out, mask)
        hidden = out
    return hidden


def prefix_layers(model, p):
    """The flat THUDM/PEFT layout [P, L·2·H] → per layer (key, value), each [1, heads, P, head_dim]."""
    cfg = model.config
    layers, heads, h = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size
    flat = formula(p, layers * 2 * h, 0.1).view(1, p, 2 * layers, heads, h // heads).permute(2, 0, 3, 1, 4)
    return [(flat[2 * i], flat[2 * i + 1]) for i in range(layers)]


def rounded(t):
    """7 decimals (make_fixtures.py keeps 5): the tiny models' gaps are ~1e-6."""
    return [[round(float(x), 7) for x in row] for row in t.reshape(-1, t.shape[-1])]


def rows(hidden, mask):
    return [rounded(hidden[b][mask[b].bool()]) for b in range(hidden.shape[0])]


def tiny_model(name, extra):
    torch.manual_seed(0)
    config = DebertaV2Config(
        vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=0,
        hidden_act="gelu", **extra,
    )
    model = DebertaV2Model(config).eval()
    # Give LayerNorms, biases and the relative table non-trivial values so a wrong mapping cannot hide.
    for pname, param in model.named_parameters():
        if "LayerNorm" in pname or pname.endswith("bias") or "rel_embeddings" in pname:
            param.copy_(param + 0.1 * torch.randn_like(param))
    return config, model


def write_model(out_dir, name, extra):
    config, model = tiny_model(name, extra)
    target = os.path.join(out_dir, name)
    os.makedirs(target, exist_ok=True)
    config.save_pretrained(target)
    state = {f"deberta.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(target, "model.safetensors"), metadata={"format": "pt"})

    # [CLS]=1 ... [SEP]=2, padding 0 on the right; lengths 12, 5, 9 (relative distances past the
    # 4 exact buckets of tiny_deberta_v2, past the clamp of tiny_deberta_abs).
    ids = torch.tensor([
        [1, 5, 17, 33, 8, 9, 21, 40, 41, 42, 43, 2],
        [1, 44, 12, 13, 2, 0, 0, 0, 0, 0, 0, 0],
        [1, 3, 4, 6, 7, 10, 11, 13, 2, 0, 0, 0],
    ])
    mask = ids.ne(0).long()
    types = torch.zeros_like(ids)
    if config.type_vocab_size > 1:
        types[:, 6:] = 1
    hf = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    mine = explicit_forward(model, ids, mask, types)
    diff = (mine - hf)[mask.bool()].abs().max().item()
    assert diff < 1e-5, f"{name}: explicit forward differs from HF DebertaV2Model by {diff}"
    prefixed = explicit_forward(model, ids, mask, types, prefix_layers(model, PREFIX_LEN))
    head_w = 0.2 * formula(HEAD_LABELS, config.hidden_size, 1.3)
    head_b = torch.tensor([0.05, -0.05, 0.0])
    logits = prefixed @ head_w.T + head_b
    write(target, "outputs.json", {
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "token_type_ids": types.tolist(),
        "last_hidden_state": rows(hf, mask),
        "prefix_len": PREFIX_LEN,
        "prefix_formula_seed": 0.1,
        "prefix_last_hidden_state": rows(prefixed, mask),
        "head_formula": "0.2 * formula(3, hidden, 1.3); bias [0.05, -0.05, 0]",
        "prefix_token_logits": rows(logits, mask),
        "explicit_vs_hf_max_abs": diff,
    })


WORDS = (
    "the , . of and to a in is was for on that with as by at from it he his said " +
    "are be has an have not but were which they their new this year who had " +
    "been its after first two one up more also u.s. than other"
).split()


def write_tokenizer(target):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + ["\u2581" + w for w in WORDS][:55])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)],
    )
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    tok.save(os.path.join(target, "tokenizer.json"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    for name, extra in CONFIGS.items():
        write_model(args.out, name, extra)
    write_tokenizer(os.path.join(args.out, "tiny_deberta_v2"))
    # Row 600 of a 1200 × 1200 table: relative positions 600 - k for k = 0 .. 1199.
    positions = build_relative_position(1200, 1200, bucket_size=256, max_position=512)[0, 600]
    write(args.out, "deberta_log_buckets.json", {
        "bucket_size": 256, "max_position": 512,
        "relative_from": 600, "relative_to": -599,
        "buckets": positions.tolist(),
    })
