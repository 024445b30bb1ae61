"""What a linear classifier on the frozen encoder's features scores on a GLUE pair task: the floor
under which prompt methods have learned nothing (README "Results"). Needs torch, transformers and
scikit-learn.

    python tools/reference/linear_probe.py ~/.cache/ptv2/models/minilm-l6 ../shared/data/glue/RTE
"""

import argparse
import csv

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoModel, AutoTokenizer

parser = argparse.ArgumentParser()
parser.add_argument("model_dir")
parser.add_argument("task_dir", help="a GLUE dir with train.tsv and dev.tsv (RTE layout)")
parser.add_argument("--max-len", type=int, default=128)
args = parser.parse_args()

tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
model = AutoModel.from_pretrained(args.model_dir).eval()


def read_pairs(path):
    rows = list(csv.reader(open(path), delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(r[1], r[2], int(r[3] == "entailment")) for r in rows]


def features(pairs):
    """[CLS] hidden state, pooler output and mean over real tokens, one row a pair."""
    out = {"cls": [], "pooler": [], "mean": []}
    with torch.no_grad():
        for i in range(0, len(pairs), 32):
            batch = pairs[i : i + 32]
            enc = tokenizer(
                [p[0] for p in batch],
                [p[1] for p in batch],
                truncation=True,
                max_length=args.max_len,
                padding=True,
                return_tensors="pt",
            )
            o = model(**enc)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out["cls"].append(o.last_hidden_state[:, 0])
            out["pooler"].append(o.pooler_output)
            out["mean"].append((o.last_hidden_state * mask).sum(1) / mask.sum(1))
    labels = np.array([p[2] for p in pairs])
    return {k: torch.cat(v).numpy() for k, v in out.items()}, labels


train_x, train_y = features(read_pairs(f"{args.task_dir}/train.tsv"))
dev_x, dev_y = features(read_pairs(f"{args.task_dir}/dev.tsv"))
print(f"dev majority class: {max(dev_y.mean(), 1 - dev_y.mean()):.4f}")
for name in train_x:
    for c in (0.1, 1.0, 10.0):
        probe = LogisticRegression(C=c, max_iter=3000).fit(train_x[name], train_y)
        print(
            f"{name:6} C={c:<4}: train {probe.score(train_x[name], train_y):.4f}, "
            f"dev {probe.score(dev_x[name], dev_y):.4f}"
        )
