"""Replay a ptv2 run in PyTorch + transformers 4.46.3 + PEFT 0.11.1 (`framework = "pytorch"`).

ptv2 writes a bundle (harness/src/replay.rs): the run's initial prompts/prefix and head, every
training step's batch, the dev batches and the learning rate of every step. This script trains
the same model from the same start on the same batches at the same rates — PEFT's PrefixTuning
(PT2; with prefix_projection, prefix-tuning), PromptTuning (PT), P-tuning (its PromptEncoder,
LSTM or MLP) or LoRA on a frozen
transformers model, or the whole model (FT) — and writes
each epoch's dev logits; ptv2 scores them with its own task code. What ptv2 does and PEFT does
not is added here so the two train the same thing: dropout on the prefix (THUDM's code) and the
head's dropout at the run's rate; PT's and P-tuning's sequence head reads the real [CLS] unless the run pools
the first prompt (PEFT's own choice).

`framework = "peft-native"` (the bundle's `native`) trains the configuration the way PEFT's users
do instead: transformers' own head init and classifier dropout, PEFT's own prompt, prefix and
LoRA inits, no prefix dropout, and a `DataLoader(shuffle=True)` drawing batches from every
training example (`all.*`), each batch cut to its longest example. Only the tokenization, the
learning rate of each step (ptv2's schedule: linear decay is transformers' own formula) and the
scoring are ptv2's.

Usage: python replay.py BUNDLE_DIR   (ptv2 runs it; see `ptv2 replay`)
"""

import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file

import peft

HEADS = {
    "sequence": ("AutoModelForSequenceClassification", "SEQ_CLS", "classifier"),
    "regression": ("AutoModelForSequenceClassification", "SEQ_CLS", "classifier"),
    "token": ("AutoModelForTokenClassification", "TOKEN_CLS", "classifier"),
    "span": ("AutoModelForQuestionAnswering", "QUESTION_ANS", "qa_outputs"),
}


def pretrained(spec, **config):
    """The pretrained model with its first num_layers layers, a new head of the run's size, and
    the run's backbone dropout where it sets one; `config` overrides more of the model's config."""
    auto_class, _, _ = HEADS[spec["head"]]
    if spec["backbone_dropout"] is not None:
        config["hidden_dropout_prob"] = spec["backbone_dropout"]
    config = transformers.AutoConfig.from_pretrained(
        spec["model_dir"], num_labels=spec["num_labels"], num_hidden_layers=spec["num_layers"], **config
    )
    return getattr(transformers, auto_class).from_pretrained(spec["model_dir"], config=config)


def base_model(spec, init):
    """The pretrained model with ptv2's initial head and the run's head dropout."""
    _, _, head_name = HEADS[spec["head"]]
    model = pretrained(spec, classifier_dropout=spec["dropout"])
    head = getattr(model, head_name)
    with torch.no_grad():
        # burn's Linear weight is [in, out], torch's [out, in].
        head.weight.copy_(init["head.classifier.weight"].T)
        head.bias.copy_(init["head.classifier.bias"])
    return model


def with_prefix_dropout(model, p):
    """ptv2 (like THUDM's code) drops prefix elements per example in training; PEFT does not."""
    encoder = model.prompt_encoder[model.active_adapter]
    forward = encoder.forward
    encoder.forward = lambda tokens: F.dropout(forward(tokens), p, encoder.training)


def pooling_real_cls(model, prompt_len):
    """PT with prompt_pool = cls: the pooler reads the real [CLS] after the P prompts."""
    inner = model.base_model
    pooler = getattr(inner, inner.base_model_prefix).pooler
    forward = pooler.forward
    pooler.forward = lambda hidden: forward(hidden[:, prompt_len:])


def qa_prefix_with_token_types(model, prompt_len):
    """PEFT 0.11.1's PeftModelForQuestionAnswering.forward drops token_type_ids on its prefix
    path (BERT then sees segment 0 for the context too); pass them on, as its sequence and token
    classification paths do and as ptv2 and THUDM's code do."""

    def forward(input_ids, attention_mask, token_type_ids):
        prefix_mask = torch.ones(input_ids.shape[0], prompt_len, dtype=attention_mask.dtype)
        return model._prefix_tuning_forward(
            input_ids=input_ids,
            attention_mask=torch.cat((prefix_mask, attention_mask), dim=1),
            token_type_ids=token_type_ids,
            return_dict=True,
        )

    model.forward = forward


# ptv2's LoRA target letters by the projection's path inside a layer.
LORA_TARGETS = {
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "o",
}


def with_lora(model, spec, task_type, init):
    """PEFT's LoRA, its factors set to ptv2's initial ones (burn's [in, r] / [r, out], transposed)."""
    config = peft.LoraConfig(
        task_type=task_type,
        r=spec["lora_rank"],
        lora_alpha=spec["lora_alpha"],
        target_modules=spec["lora_modules"],
        lora_dropout=0.0,
    )
    model = peft.get_peft_model(model, config)
    copied = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if not hasattr(module, "lora_A") or ".encoder.layer." not in name:
                continue
            layer, path = name.split(".encoder.layer.")[1].split(".", 1)
            letter = LORA_TARGETS[path]
            module.lora_A[model.active_adapter].weight.copy_(init[f"lora.{layer}.{letter}.a"].T)
            module.lora_B[model.active_adapter].weight.copy_(init[f"lora.{layer}.{letter}.b"].T)
            copied += 1
    assert copied == spec["num_layers"] * len(spec["lora_modules"]), copied
    return model


def prompt_config(spec, task_type):
    """PEFT's config of a prompt method: PT's prompts, P-tuning's prompt encoder, PT2's prefix,
    or prefix-tuning's (the prefix through PEFT's projection MLP)."""
    method, prompt_len = spec["method"], spec["prompt_len"]
    if method == "ptuning":
        return peft.PromptEncoderConfig(
            task_type=task_type,
            num_virtual_tokens=prompt_len,
            encoder_reparameterization_type=spec["ptuning_encoder"],
            encoder_hidden_size=spec["encoder_hidden"],
        )
    if method == "prefix":
        return peft.PrefixTuningConfig(
            task_type=task_type,
            num_virtual_tokens=prompt_len,
            prefix_projection=True,
            encoder_hidden_size=spec["encoder_hidden"],
        )
    if method == "pt2":
        return peft.PrefixTuningConfig(task_type=task_type, num_virtual_tokens=prompt_len)
    return peft.PromptTuningConfig(task_type=task_type, num_virtual_tokens=prompt_len)


def projection_start(encoder, init):
    """PEFT's prefix projection set to ptv2's MLP (burn's [in, out] weights transposed)."""
    with torch.no_grad():
        encoder.embedding.weight.copy_(init["adapter.params.embedding"])
        for index, name in [(0, "dense_in"), (2, "dense_out")]:
            encoder.transform[index].weight.copy_(init[f"adapter.params.{name}.weight"].T)
            encoder.transform[index].bias.copy_(init[f"adapter.params.{name}.bias"])


def ptuning_start(encoder, init):
    """PEFT's PromptEncoder set to ptv2's start: burn's Linear weights are [in, out] (torch's
    transposed), and its LSTM keeps one linear per gate where torch stacks the gates i, f, g, o."""
    torch_params = dict(encoder.named_parameters())
    ours = {"embedding.weight": init["prompt.embedding"]}
    dense = {"lstm": ["dense_in", "dense_out"], "mlp": ["dense_in", "dense_mid", "dense_out"]}
    kind = "lstm" if hasattr(encoder, "lstm_head") else "mlp"
    for i, name in enumerate(dense[kind]):
        ours[f"mlp_head.{2 * i}.weight"] = init[f"adapter.net.{name}.weight"].T
        ours[f"mlp_head.{2 * i}.bias"] = init[f"adapter.net.{name}.bias"]
    if kind == "lstm":
        gates = ["input_gate", "forget_gate", "cell_gate", "output_gate"]
        for layer in range(encoder.lstm_head.num_layers):
            for direction, suffix in [("forward", ""), ("reverse", "_reverse")]:
                at = f"adapter.net.layers.{layer}.{direction}"
                for torch_name, ours_name in [("ih", "input_transform"), ("hh", "hidden_transform")]:
                    key = f"lstm_head.{{}}_{torch_name}_l{layer}{suffix}"
                    ours[key.format("weight")] = torch.cat([init[f"{at}.{g}.{ours_name}.weight"].T for g in gates])
                    ours[key.format("bias")] = torch.cat([init[f"{at}.{g}.{ours_name}.bias"] for g in gates])
    assert set(ours) == set(torch_params), sorted(set(ours) ^ set(torch_params))
    with torch.no_grad():
        for name, value in ours.items():
            torch_params[name].copy_(value)


def tuned_model(spec, init):
    model = base_model(spec, init)
    if spec["method"] == "ft":
        return model
    _, task_type, _ = HEADS[spec["head"]]
    if spec["method"] == "lora":
        return with_lora(model, spec, task_type, init)
    model = peft.get_peft_model(model, prompt_config(spec, task_type))
    encoder = model.prompt_encoder[model.active_adapter]
    if spec["method"] == "ptuning":
        ptuning_start(encoder, init)
    elif spec["method"] == "prefix":
        projection_start(encoder, init)
    else:
        start = init["prefix.embedding" if spec["method"] == "pt2" else "prompt.embedding"]
        with torch.no_grad():
            encoder.embedding.weight.copy_(start)
    if spec["method"] in ("pt2", "prefix"):
        with_prefix_dropout(model, spec["prefix_dropout"])
        if spec["head"] == "span":
            qa_prefix_with_token_types(model, spec["prompt_len"])
    elif not spec["pool_first_prompt"]:
        pooling_real_cls(model, spec["prompt_len"])
    return model


def native_model(spec):
    """The model as a PEFT user builds it: every init PEFT's or transformers' own."""
    _, task_type, _ = HEADS[spec["head"]]
    model = pretrained(spec)
    method = spec["method"]
    if method == "ft":
        return model
    if method == "lora":
        config = peft.LoraConfig(
            task_type=task_type, r=spec["lora_rank"], lora_alpha=spec["lora_alpha"], target_modules=spec["lora_modules"]
        )
    else:
        config = prompt_config(spec, task_type)
    return peft.get_peft_model(model, config)


def native_batches(spec, train, generator):
    """One epoch of PEFT's loop: shuffled batches of every training example, each cut to its
    longest example (right padding), as a collator pads them."""
    count = train["all.input_ids"].shape[0]
    loader = torch.utils.data.DataLoader(range(count), batch_size=spec["batch_size"], shuffle=True, generator=generator)
    for index in loader:
        length = int(train["all.attention_mask"][index].sum(1).max())
        batch = {k: v[index][:, :length] for k, v in inputs_of(train, "all").items()}
        labels = train["all.labels"][index]
        yield batch, labels[:, :length] if spec["head"] == "token" else labels


def inputs_of(tensors, prefix):
    """A batch's model inputs, `{prefix}.input_ids` and its siblings in the bundle."""
    return {k: tensors[f"{prefix}.{k}"] for k in ("input_ids", "attention_mask", "token_type_ids")}


def outputs(model, tensors, prefix):
    return model(**inputs_of(tensors, prefix))


def loss_of(spec, out, labels):
    """ptv2's losses (models/src/loss.rs): mean cross-entropy ignoring -100, MSE, span mean."""
    if spec["head"] == "span":
        return (F.cross_entropy(out.start_logits, labels[:, 0]) + F.cross_entropy(out.end_logits, labels[:, 1])) / 2
    if spec["head"] == "regression":
        return F.mse_loss(out.logits.squeeze(-1), labels)
    logits = out.logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def evaluate(spec, model, batches):
    model.eval()
    logits = {}
    with torch.no_grad():
        for i in range(spec["eval_batches"]):
            out = outputs(model, batches, f"b{i}")
            if spec["head"] == "span":
                logits[f"b{i}.start"] = out.start_logits.contiguous()
                logits[f"b{i}.end"] = out.end_logits.contiguous()
            else:
                logits[f"b{i}.logits"] = out.logits.contiguous()
    return logits


def ptv2_batches(spec, train, epoch):
    """One epoch of ptv2's own batches, as the run drew them."""
    for s in range(spec["steps_per_epoch"]):
        prefix = f"e{epoch}.s{s}"
        yield inputs_of(train, prefix), train[f"{prefix}.labels"]


def train_epoch(spec, model, params, optimizer, batches, step):
    """One epoch's steps; returns the mean training loss and the next step."""
    model.train()
    total, count = 0.0, 0
    for batch, labels in batches:
        loss = loss_of(spec, model(**batch), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for group in optimizer.param_groups:
            group["lr"] = spec["learning_rates"][step]
        optimizer.step()
        optimizer.zero_grad()
        total += loss.item()
        count += 1
        step += 1
    assert count == spec["steps_per_epoch"], (count, spec["steps_per_epoch"])
    return total / count, step


def main(bundle):
    bundle = Path(bundle)
    spec = json.loads((bundle / "replay.json").read_text())
    torch.manual_seed(spec["seed"])
    torch.set_num_threads(spec["threads"])
    train = load_file(bundle / "train.safetensors")
    dev = load_file(bundle / "eval.safetensors")
    model = native_model(spec) if spec["native"] else tuned_model(spec, load_file(bundle / "init.safetensors"))
    generator = torch.Generator().manual_seed(spec["seed"])
    params = [p for p in model.parameters() if p.requires_grad]
    print(f"trainable {sum(p.numel() for p in params)} of {sum(p.numel() for p in model.parameters())}", flush=True)
    optimizer = torch.optim.AdamW(params, lr=spec["learning_rates"][0], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    epochs, step = [], 0
    for epoch in range(spec["epochs"]):
        started = time.time()
        batches = native_batches(spec, train, generator) if spec["native"] else ptv2_batches(spec, train, epoch)
        train_loss, step = train_epoch(spec, model, params, optimizer, batches, step)
        seconds = time.time() - started
        save_file(evaluate(spec, model, dev), bundle / f"epoch{epoch + 1}.safetensors")
        epochs.append({"train_loss": train_loss, "seconds": seconds})
        print(f"epoch {epoch + 1}: train loss {train_loss:.4f} ({seconds:.0f} s)", flush=True)
    report = {
        "epochs": epochs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": f"pytorch {torch.__version__} cpu ({spec['threads']} threads), "
        f"transformers {transformers.__version__}, peft {peft.__version__}",
    }
    (bundle / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
