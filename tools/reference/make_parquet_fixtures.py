"""Small Parquet files in the layout of Hugging Face `datasets` exports, written with pyarrow
(what `datasets` itself uses), from the first rows of permissively licensed sets in ../shared/data:
COPA (BSD-2), BoolQ (CC BY-SA 3.0), WNUT-17 (CC BY 4.0), SQuAD v1.1 dev (CC BY-SA 4.0), plus SST-2
style rows written here. The tests read them with `--task parquet:…` and compare with the native
readers on the same rows.

    python tools/reference/make_parquet_fixtures.py --data ../shared/data --out harness/tests/fixtures/parquet
"""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from common import source_and_out, read_conll

WNUT17_TAGS = ["O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work", "B-group", "I-group",
               "B-location", "I-location", "B-person", "I-person", "B-product", "I-product"]


def jsonl(path, n):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(n))]


def main():
    args = source_and_out()
    write = lambda table, name: pq.write_table(table, os.path.join(args.out, name))

    copa = jsonl(os.path.join(args.data, "superglue/COPA/val.jsonl"), 20)
    write(pa.table({k: [r[k] for r in copa] for k in ["premise", "choice1", "choice2", "question", "idx", "label"]}), "copa.parquet")

    boolq = jsonl(os.path.join(args.data, "superglue/BoolQ/val.jsonl"), 20)
    write(pa.table({"question": [r["question"] for r in boolq], "passage": [r["passage"] for r in boolq],
                    "idx": [r["idx"] for r in boolq], "label": [int(r["label"]) for r in boolq]}), "boolq.parquet")

    wnut = read_conll(os.path.join(args.data, "ner/wnut17/emerging.dev.conll"), 30)
    write(pa.table({"id": [str(i) for i in range(len(wnut))], "tokens": [w for w, _ in wnut],
                    "ner_tags": [[WNUT17_TAGS.index(t) for t in tags] for _, tags in wnut]}), "wnut17.parquet")

    squad = json.load(open(os.path.join(args.data, "squad/v1.1/dev-v1.1.json")))
    rows = []
    for article in squad["data"][:1]:
        for paragraph in article["paragraphs"][:3]:
            for qa in paragraph["qas"]:
                rows.append({"id": qa["id"], "title": article["title"], "context": paragraph["context"], "question": qa["question"],
                             "answers": {"text": [a["text"] for a in qa["answers"]], "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    answers_type = pa.struct([("text", pa.list_(pa.string())), ("answer_start", pa.list_(pa.int32()))])
    write(pa.table({"id": [r["id"] for r in rows], "title": [r["title"] for r in rows], "context": [r["context"] for r in rows],
                    "question": [r["question"] for r in rows], "answers": pa.array([r["answers"] for r in rows], type=answers_type)}),
          "squad.parquet")
    # The same questions in SQuAD JSON, to compare the two readers.
    json.dump({"version": "1.1", "data": [{"title": squad["data"][0]["title"], "paragraphs": squad["data"][0]["paragraphs"][:3]}]},
              open(os.path.join(args.out, "squad.json"), "w"))

    sst2 = [("a gripping , funny and moving film .", 1), ("flat , dull and far too long .", 0),
            ("the cast is wonderful .", 1), ("nothing in it works .", 0)]
    write(pa.table({"sentence": [s for s, _ in sst2], "label": pa.array([l for _, l in sst2], pa.int64()),
                    "idx": list(range(len(sst2)))}), "sst2.parquet")
    print(sorted(os.listdir(args.out)))


if __name__ == "__main__":
    main()
