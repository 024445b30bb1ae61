"""Check a `ptv2 encode` JSON against transformers on the same texts: token ids equal, hidden states
and pooled output within a tolerance (max abs over real tokens).

    ptv2 encode --model minilm-l6 --text "..." --text "..." --out h.json
    python tools/reference/check_encode.py h.json [--tolerance 1e-4]
"""

import argparse
import json
import sys

import torch
from transformers import AutoModel, AutoTokenizer

parser = argparse.ArgumentParser()
parser.add_argument("encoded")
parser.add_argument("--tolerance", type=float, default=1e-4)
args = parser.parse_args()

data = json.load(open(args.encoded))
tok = AutoTokenizer.from_pretrained(data["model_dir"])
model = AutoModel.from_pretrained(data["model_dir"], attn_implementation="eager").eval()
worst_hidden = worst_pooled = 0.0
ids_equal = True
with torch.no_grad():
    for item in data["inputs"]:
        enc = tok(item["text"], item["pair"], truncation=True, max_length=512, return_tensors="pt")
        ids_equal &= enc["input_ids"][0].tolist() == item["input_ids"]
        out = model(**enc)
        worst_hidden = max(worst_hidden, (out.last_hidden_state[0] - torch.tensor(item["last_hidden_state"])).abs().max().item())
        if item["pooled"] is not None:
            worst_pooled = max(worst_pooled, (out.pooler_output[0] - torch.tensor(item["pooled"])).abs().max().item())
print(f"{len(data['inputs'])} inputs: token ids equal: {ids_equal}; max abs diff hidden {worst_hidden:.2e}, pooled {worst_pooled:.2e}")
sys.exit(0 if ids_equal and worst_hidden < args.tolerance and worst_pooled < args.tolerance else 1)
