"""The PyTorch side of `ptv2 bench`: one model × method × length, printed as one JSON row.

Same work as ptv2's measurement: batch of random token ids (all real tokens), a 2-class
sequence-classification head on the pooled [CLS], cross-entropy, backward, global grad-norm clip
1.0, AdamW (eps 1e-8, no weight decay) on the trainable parameters, dropout 0.1 in training.
FT is HF BertForSequenceClassification. PT is PEFT's PromptTuning on it. PT2 is written out on
the HF modules (per-layer K/V concatenation, frozen backbone), because PEFT's PrefixTuning no
longer runs on transformers 5's BERT ("Model does not support past key values").

    python tools/reference/bench_torch.py --model-dir DIR --name minilm-l6 --method pt2 --seq-len 128
"""

import argparse
import json
import os
import resource
import statistics
import tempfile
import time

import torch
from safetensors.torch import save_file
from transformers import BertForSequenceClassification

parser = argparse.ArgumentParser()
parser.add_argument("--model-dir", required=True)
parser.add_argument("--name", required=True)
parser.add_argument("--method", choices=["ft", "pt", "pt2", "lora"], required=True)
parser.add_argument("--seq-len", type=int, default=128)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--prompt-len", type=int, default=16)
parser.add_argument("--warmup", type=int, default=2)
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--threads", type=int, default=os.cpu_count())
args = parser.parse_args()

torch.manual_seed(0)
torch.set_num_threads(args.threads)


class PrefixTunedBert(torch.nn.Module):
    """P-tuning v2 on a frozen HF BertModel: prefix [P, L*2*H] in THUDM layout, dropout on it."""

    def __init__(self, bert_cls, prompt_len):
        super().__init__()
        self.model = bert_cls
        for p in self.model.parameters():
            p.requires_grad = False
        cfg = self.model.config
        self.prefix = torch.nn.Parameter(0.02 * torch.randn(prompt_len, cfg.num_hidden_layers * 2 * cfg.hidden_size))
        self.model.classifier.weight.requires_grad = True
        self.model.classifier.bias.requires_grad = True
        self.config = cfg

    def forward(self, input_ids, attention_mask, labels=None):
        cfg, bert = self.config, self.model.bert
        b, n = input_ids.shape
        p = self.prefix.shape[0]
        nh, hd = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
        kv = self.prefix.unsqueeze(0).expand(b, -1, -1).view(b, p, 2 * cfg.num_hidden_layers, nh, hd)
        kv = torch.nn.functional.dropout(kv, 0.1, self.training).permute(2, 0, 3, 1, 4).split(2)
        drop = lambda t, rate=0.1: torch.nn.functional.dropout(t, rate, self.training)
        emb = bert.embeddings
        positions = torch.arange(p, p + n).expand(b, n)
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions) + emb.token_type_embeddings(torch.zeros_like(input_ids))
        x = drop(emb.LayerNorm(x))
        additive = (1.0 - torch.cat([torch.ones(b, p), attention_mask.float()], 1))[:, None, None, :] * -10000.0
        for i, layer in enumerate(bert.encoder.layer):
            sa = layer.attention.self
            q = sa.query(x).view(b, n, nh, hd).transpose(1, 2)
            k = torch.cat([kv[i][0], sa.key(x).view(b, n, nh, hd).transpose(1, 2)], 2)
            v = torch.cat([kv[i][1], sa.value(x).view(b, n, nh, hd).transpose(1, 2)], 2)
            probs = drop(torch.softmax(q @ k.transpose(-1, -2) / hd**0.5 + additive, -1))
            ctx = (probs @ v).transpose(1, 2).reshape(b, n, cfg.hidden_size)
            a = layer.attention.output.LayerNorm(drop(layer.attention.output.dense(ctx)) + x)
            x = layer.output.LayerNorm(drop(layer.output.dense(torch.nn.functional.gelu(layer.intermediate.dense(a)))) + a)
        pooled = torch.tanh(bert.pooler.dense(x[:, 0]))
        logits = self.model.classifier(drop(pooled))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return type("Out", (), {"loss": loss, "logits": logits})()


model = BertForSequenceClassification.from_pretrained(args.model_dir, num_labels=2, attn_implementation="eager")
if args.method == "pt":
    from peft import PromptTuningConfig, TaskType, get_peft_model

    model = get_peft_model(model, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=args.prompt_len))
elif args.method == "pt2":
    model = PrefixTunedBert(model, args.prompt_len)
elif args.method == "lora":
    from peft import LoraConfig, TaskType, get_peft_model

    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=8, target_modules=["query", "value"]))
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(trainable, lr=1e-4, eps=1e-8, weight_decay=0.0)
ids = torch.randint(1000, model.config.vocab_size, (args.batch_size, args.seq_len))
mask = torch.ones_like(ids)
labels = torch.arange(args.batch_size) % 2

model.train()
times = []
for step in range(args.warmup + args.steps):
    start = time.perf_counter()
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    optimizer.zero_grad()
    if step >= args.warmup:
        times.append(time.perf_counter() - start)

model.eval()
eval_times = []
with torch.no_grad():
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        model(input_ids=ids, attention_mask=mask)
        if step >= args.warmup:
            eval_times.append(time.perf_counter() - start)

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "checkpoint.safetensors")
    if args.method == "ft":
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
    elif args.method == "pt2":
        state = {k: v.detach().contiguous() for k, v in model.named_parameters() if v.requires_grad}
    else:
        from peft import get_peft_model_state_dict

        state = {k: v.contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, path)
    checkpoint_bytes = os.path.getsize(path)

print(json.dumps({
    "framework": "pytorch",
    "model": args.name,
    "method": args.method,
    "seq_len": args.seq_len,
    "batch_size": args.batch_size,
    "train_step_s": statistics.median(times),
    "eval_seq_per_s": args.batch_size / statistics.median(eval_times),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "checkpoint_bytes": checkpoint_bytes,
    "trainable": sum(p.numel() for p in trainable),
    "threads": args.threads,
}))
