"""CoNLL-column files as (words, tags) sentences, shared by the fixture scripts."""


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
