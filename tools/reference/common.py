"""What the fixture scripts share: their `--data DIR --out DIR` arguments, CoNLL reading."""

import argparse
import os


def read_conll(path, limit):
    sentences, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append((words, tags))
                words, tags = [], []
            if len(sentences) == limit:
                break
            continue
        fields = line.split()
        words.append(fields[0])
        tags.append(fields[-1])
    if words and len(sentences) < limit:
        sentences.append((words, tags))
    return sentences


def source_and_out(source="--data"):
    """Parse `SOURCE DIR --out DIR` (`--data` by default) and create the output dir."""
    parser = argparse.ArgumentParser()
    parser.add_argument(source, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    return args
