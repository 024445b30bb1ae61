"""Golden metric values from the standard Python tools, committed so ptv2's metric tests need no Python.

    python tools/reference/make_metric_fixtures.py --data ../shared/data --out harness/tests/fixtures/metrics

Needs scikit-learn, scipy and seqeval. Writes, from permissively licensed sets only:
  labels_gold.txt / labels_pred.txt   synthetic binary and 3-class labels, one per line
  values_gold.txt / values_pred.txt   synthetic regression values
  wnut17_gold.conll / wnut17_pred.conll  the first 120 WNUT-17 dev sentences (CC BY 4.0): gold tags,
                                      and predictions made by deterministic perturbations
  squad_gold.json / squad_pred.json   the first 80 SQuAD v1.1 dev questions (CC BY-SA 4.0), and
                                      predictions: exact, shifted, partial, with articles, wrong, missing
  golden.json                         sklearn / scipy / seqeval / official-SQuAD-script values
"""

import collections
import json
import os
import random
import re
import string

from scipy.stats import pearsonr, spearmanr
from seqeval.metrics import f1_score, precision_score, recall_score
from sklearn.metrics import accuracy_score, f1_score as sk_f1, matthews_corrcoef

from common import source_and_out, read_conll


# --- the official SQuAD v1.1 evaluation logic (evaluate-v1.1.py), verbatim in substance ---
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction, ground_truth):
    p = normalize_answer(prediction).split()
    g = normalize_answer(ground_truth).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0
    precision = same / len(p)
    recall = same / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_exact(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def squad_evaluate(dataset, predictions):
    f1 = exact = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                truths = [a["text"] for a in qa["answers"]]
                exact += max(squad_exact(predictions[qa["id"]], t) for t in truths)
                f1 += max(squad_f1(predictions[qa["id"]], t) for t in truths)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}
# --- end of the official logic ---


def perturb_tags(tags, rng):
    out = list(tags)
    for i, t in enumerate(out):
        r = rng.random()
        if t != "O" and r < 0.15:
            out[i] = "O"  # missed token
        elif t.startswith("B-") and r < 0.25:
            out[i] = "I-" + t[2:]  # IOB1-style start, still an entity in default mode
        elif t != "O" and r < 0.32:
            out[i] = t[:2] + "person"  # wrong type
        elif t == "O" and r < 0.03:
            out[i] = "B-location"  # spurious entity
    return out


def main():
    args = source_and_out()
    rng = random.Random(2022)
    golden = {}

    # Classification and regression: synthetic labels.
    gold = [rng.randrange(2) for _ in range(200)]
    pred = [g if rng.random() < 0.7 else 1 - g for g in gold]
    gold3 = [rng.randrange(3) for _ in range(150)]
    pred3 = [g if rng.random() < 0.6 else rng.randrange(3) for g in gold3]
    values = [round(rng.uniform(0, 5), 3) for _ in range(100)]
    noisy = [round(v + rng.gauss(0, 1), 3) for v in values]
    for name, rows in [("labels_gold.txt", gold), ("labels_pred.txt", pred), ("labels3_gold.txt", gold3),
                       ("labels3_pred.txt", pred3), ("values_gold.txt", values), ("values_pred.txt", noisy)]:
        with open(os.path.join(args.out, name), "w") as f:
            f.write("".join(f"{r}\n" for r in rows))
    golden["accuracy"] = accuracy_score(gold, pred)
    golden["f1_binary"] = sk_f1(gold, pred)
    golden["matthews"] = matthews_corrcoef(gold, pred)
    golden["macro_f1_3"] = sk_f1(gold3, pred3, average="macro")
    golden["accuracy_3"] = accuracy_score(gold3, pred3)
    golden["pearson"] = pearsonr(noisy, values)[0]
    golden["spearman"] = spearmanr(noisy, values)[0]

    # NER: WNUT-17 dev.
    sentences = read_conll(os.path.join(args.data, "ner/wnut17/emerging.dev.conll"), 120)
    gold_tags = [t for _, t in sentences]
    pred_tags = [perturb_tags(t, rng) for t in gold_tags]
    with open(os.path.join(args.out, "wnut17_gold.conll"), "w") as g, open(os.path.join(args.out, "wnut17_pred.conll"), "w") as p:
        for (words, tags), ptags in zip(sentences, pred_tags):
            for w, t, pt in zip(words, tags, ptags):
                g.write(f"{w}\t{t}\n")
                p.write(f"{w} {t} {pt}\n")
            g.write("\n")
            p.write("\n")
    golden["seqeval_f1"] = f1_score(gold_tags, pred_tags)
    golden["seqeval_precision"] = precision_score(gold_tags, pred_tags)
    golden["seqeval_recall"] = recall_score(gold_tags, pred_tags)

    # SQuAD v1.1 dev: the first 80 questions.
    dev = json.load(open(os.path.join(args.data, "squad/v1.1/dev-v1.1.json")))
    kept, count = [], 0
    for article in dev["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = paragraph["qas"][: max(0, 80 - count)]
            count += len(qas)
            if qas:
                paragraphs.append({"context": paragraph["context"], "qas": qas})
        if paragraphs:
            kept.append({"title": article["title"], "paragraphs": paragraphs})
        if count >= 80:
            break
    predictions = {}
    for article in kept:
        for paragraph in article["paragraphs"]:
            words = paragraph["context"].split()
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]["text"]
                r = rng.random()
                if r < 0.3:
                    predictions[qa["id"]] = answer
                elif r < 0.45:
                    predictions[qa["id"]] = "The " + answer + "."
                elif r < 0.65:
                    predictions[qa["id"]] = " ".join(answer.split()[:1] + words[:2])
                elif r < 0.9:
                    predictions[qa["id"]] = " ".join(rng.sample(words, 3))
                # else: no prediction for this question
    json.dump({"version": "1.1", "data": kept}, open(os.path.join(args.out, "squad_gold.json"), "w"), indent=1)
    json.dump(predictions, open(os.path.join(args.out, "squad_pred.json"), "w"), indent=1)
    golden.update({f"squad_{k}": v for k, v in squad_evaluate(kept, predictions).items()})

    json.dump(golden, open(os.path.join(args.out, "golden.json"), "w"), indent=1)
    print(json.dumps(golden, indent=1))


if __name__ == "__main__":
    main()
