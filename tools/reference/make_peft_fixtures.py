"""PEFT adapters and their logits, committed as fixtures so ptv2's PEFT interop tests need no Python.

Run once (needs torch, transformers==4.46.3, peft==0.11.1, tokenizers<0.21):
    python tools/reference/make_peft_fixtures.py --minilm ~/.cache/ptv2/models/minilm-l6 \
        --out harness/tests/fixtures/peft

For PREFIX_TUNING (plain and with prefix_projection), PROMPT_TUNING, P_TUNING (LSTM and MLP prompt
encoders) and LORA on MiniLM-L6 (BertForSequenceClassification, 2 labels,
the classifier in `modules_to_save`), with seeded random prefix/prompt/LoRA factors (B too, which
PEFT starts at zero; a prompt encoder's or projection's own weights as PEFT starts them) and classifier values large enough to move the logits, writes:
  prefix_seq_cls/, prefix_projection_seq_cls/, prompt_seq_cls/,
  ptuning_lstm_seq_cls/, ptuning_mlp_seq_cls/,
  lora_seq_cls/                      what `PeftModel.save_pretrained` wrote (adapter_config.json,
                                     adapter_model.safetensors), reloaded once with
                                     `PeftModel.from_pretrained` to check it gives the same logits
  expected.json                      the sentence pairs, their token ids, and PEFT's logits for each
"""

import json
import os

import torch
from peft import (
    LoraConfig,
    PeftModel,
    PrefixTuningConfig,
    PromptEncoderConfig,
    PromptTuningConfig,
    TaskType,
    get_peft_model,
)
from transformers import AutoTokenizer, BertForSequenceClassification

from common import source_and_out

torch.set_grad_enabled(False)

PAIRS = [
    ("A man plays a guitar on stage.", "A man is playing music."),
    ("The cat sleeps on the warm windowsill.", "The dog barks loudly at the mailman."),
    ("Paris is the capital of France.", "Paris is in France."),
    ("Nobody came to the meeting.", "The meeting was crowded."),
]


def logits_of(model, batch):
    model.eval()
    return model(**batch).logits


def make(kind, config, minilm, tokenizer, out):
    torch.manual_seed(17)
    base = BertForSequenceClassification.from_pretrained(minilm, num_labels=2)
    model = get_peft_model(base, config)
    if kind.startswith("lora"):
        for name, weight in model.named_parameters():
            if "lora_" in name:
                weight.copy_(torch.randn_like(weight) * 0.2)
        classifier = model.base_model.model.classifier.modules_to_save["default"]
    else:
        encoder = model.prompt_encoder["default"]
        encoder.embedding.weight.copy_(torch.randn_like(encoder.embedding.weight) * 0.5)
        classifier = model.base_model.classifier.modules_to_save["default"]
    classifier.weight.copy_(torch.randn_like(classifier.weight) * 0.5)
    classifier.bias.copy_(torch.randn_like(classifier.bias) * 0.1)
    batch = tokenizer(
        [a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt"
    )
    logits = logits_of(model, batch)
    path = os.path.join(out, kind)
    model.save_pretrained(path)
    os.remove(os.path.join(path, "README.md"))  # PEFT's model card template, nothing of the adapter
    config_path = os.path.join(path, "adapter_config.json")
    with open(config_path) as f:
        saved = json.load(f)
    saved["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"  # not this machine's path
    with open(config_path, "w") as f:
        json.dump(saved, f, indent=2, sort_keys=True)

    fresh = BertForSequenceClassification.from_pretrained(minilm, num_labels=2)
    reloaded = PeftModel.from_pretrained(fresh, path)
    again = logits_of(reloaded, batch)
    assert torch.allclose(logits, again, atol=1e-6), (kind, logits, again)
    return batch, logits


def main():
    args = source_and_out("--minilm")
    tokenizer = AutoTokenizer.from_pretrained(args.minilm)
    expected = {"pairs": [{"text": a, "pair": b} for a, b in PAIRS]}
    configs = {
        "prefix_seq_cls": PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=5),
        "prompt_seq_cls": PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=3),
        "prefix_projection_seq_cls": PrefixTuningConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=4, prefix_projection=True, encoder_hidden_size=24
        ),
        "ptuning_lstm_seq_cls": PromptEncoderConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=3, encoder_reparameterization_type="LSTM",
            encoder_hidden_size=16,
        ),
        "ptuning_mlp_seq_cls": PromptEncoderConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=4, encoder_reparameterization_type="MLP",
            encoder_hidden_size=32,
        ),
        "lora_seq_cls": LoraConfig(
            task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=["query", "value"]
        ),
    }
    for kind, config in configs.items():
        batch, logits = make(kind, config, args.minilm, tokenizer, args.out)
        expected["input_ids"] = batch["input_ids"].tolist()
        expected[kind] = {"logits": logits.tolist()}
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
