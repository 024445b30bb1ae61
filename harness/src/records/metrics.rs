//! Metrics, as the standard Python tools compute them (scikit-learn, scipy).

/// Fraction of predictions equal to the gold labels.
pub fn accuracy(pred: &[usize], gold: &[usize]) -> f64 {
    assert_eq!(pred.len(), gold.len());
    if gold.is_empty() {
        return 0.0;
    }
    pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / gold.len() as f64
}

/// F1 of one class (sklearn `f1_score(average="binary", pos_label=positive)`), 0 when undefined.
pub fn f1_for_class(pred: &[usize], gold: &[usize], positive: usize) -> f64 {
    let tp = pred
        .iter()
        .zip(gold)
        .filter(|&(&p, &g)| p == positive && g == positive)
        .count() as f64;
    let predicted = pred.iter().filter(|&&p| p == positive).count() as f64;
    let actual = gold.iter().filter(|&&g| g == positive).count() as f64;
    if predicted + actual == 0.0 {
        0.0
    } else {
        2.0 * tp / (predicted + actual)
    }
}

/// Unweighted mean of the per-class F1 over `num_classes` classes (sklearn `average="macro"`).
pub fn macro_f1(pred: &[usize], gold: &[usize], num_classes: usize) -> f64 {
    (0..num_classes)
        .map(|c| f1_for_class(pred, gold, c))
        .sum::<f64>()
        / num_classes as f64
}

/// Matthews correlation coefficient for binary labels (sklearn `matthews_corrcoef`), 0 when undefined.
pub fn matthews(pred: &[usize], gold: &[usize]) -> f64 {
    let count = |p: usize, g: usize| {
        pred.iter()
            .zip(gold)
            .filter(|&(&a, &b)| a == p && b == g)
            .count() as f64
    };
    let (tp, tn, fp, fn_) = (count(1, 1), count(0, 0), count(1, 0), count(0, 1));
    let denom = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
    if denom == 0.0 {
        0.0
    } else {
        (tp * tn - fp * fn_) / denom
    }
}

/// Pearson correlation (scipy `pearsonr`).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    if vx == 0.0 || vy == 0.0 {
        0.0
    } else {
        cov / (vx * vy).sqrt()
    }
}

/// Ranks with ties given their average rank (scipy `rankdata(method="average")`).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = average;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman correlation (scipy `spearmanr`): Pearson of the average ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// Precision, recall and F1 of entity spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntityScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// seqeval's `get_entities` (default, non-strict mode) over sentences joined with "O" between them:
/// `(type, first, last)` token positions.
pub fn entities(sentences: &[Vec<String>]) -> Vec<(String, usize, usize)> {
    let mut flat: Vec<&str> = vec![];
    for sentence in sentences {
        flat.extend(sentence.iter().map(String::as_str));
        flat.push("O");
    }
    flat.push("O");
    let split = |t: &str| -> (char, String) {
        let tag = t.chars().next().unwrap_or('O');
        let kind = t
            .get(1..)
            .unwrap_or("")
            .split_once('-')
            .map_or(t.get(1..).unwrap_or(""), |(_, k)| k);
        (
            tag,
            if kind.is_empty() {
                "_".to_string()
            } else {
                kind.to_string()
            },
        )
    };
    let (mut prev_tag, mut prev_kind, mut begin) = ('O', String::new(), 0);
    let mut chunks = vec![];
    for (i, t) in flat.iter().enumerate() {
        let (tag, kind) = split(t);
        let end = matches!(prev_tag, 'E' | 'S')
            || (matches!(prev_tag, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
            || (prev_tag != 'O' && prev_tag != '.' && prev_kind != kind);
        if end {
            chunks.push((prev_kind.clone(), begin, i - 1));
        }
        let start = matches!(tag, 'B' | 'S')
            || (matches!(prev_tag, 'E' | 'S' | 'O') && matches!(tag, 'E' | 'I'))
            || (tag != 'O' && tag != '.' && prev_kind != kind);
        if start {
            begin = i;
        }
        prev_tag = tag;
        prev_kind = kind;
    }
    chunks
}

/// seqeval `f1_score` / `precision_score` / `recall_score` with the default micro average.
pub fn seqeval(gold: &[Vec<String>], pred: &[Vec<String>]) -> EntityScores {
    let gold: std::collections::HashSet<_> = entities(gold).into_iter().collect();
    let pred: std::collections::HashSet<_> = entities(pred).into_iter().collect();
    let correct = gold.intersection(&pred).count() as f64;
    let precision = if pred.is_empty() {
        0.0
    } else {
        correct / pred.len() as f64
    };
    let recall = if gold.is_empty() {
        0.0
    } else {
        correct / gold.len() as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    EntityScores {
        precision,
        recall,
        f1,
    }
}

/// The official SQuAD answer normalization: lower case, no punctuation, no articles, single spaces.
pub fn normalize_answer(text: &str) -> String {
    let lower: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !is_ascii_punctuation_like_python(*c))
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Python's `string.punctuation`, which the official script removes.
fn is_ascii_punctuation_like_python(c: char) -> bool {
    c.is_ascii_punctuation()
}

pub fn squad_exact(prediction: &str, gold: &str) -> f64 {
    (normalize_answer(prediction) == normalize_answer(gold)) as u8 as f64
}

/// Token-overlap F1 of the official script (v2.0 counts two empty answers as 1).
pub fn squad_f1(prediction: &str, gold: &str) -> f64 {
    let p = normalize_answer(prediction);
    let g = normalize_answer(gold);
    let p: Vec<&str> = p.split_whitespace().collect();
    let g: Vec<&str> = g.split_whitespace().collect();
    if p.is_empty() || g.is_empty() {
        return (p.is_empty() && g.is_empty()) as u8 as f64;
    }
    let mut counts: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for w in &g {
        *counts.entry(w).or_default() += 1;
    }
    let mut same = 0;
    for w in &p {
        if let Some(c) = counts.get_mut(w).filter(|c| **c > 0) {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / p.len() as f64;
    let recall = same as f64 / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// SQuAD EM and F1 in 0–1 like every metric here (the official script prints them ×100): each
/// prediction's best match over its gold answers, averaged.
/// An unanswerable question has the gold answer "" (v2.0).
pub fn squad(predictions: &[String], gold: &[Vec<String>]) -> (f64, f64) {
    let n = gold.len().max(1) as f64;
    let best = |f: fn(&str, &str) -> f64| -> f64 {
        predictions
            .iter()
            .zip(gold)
            .map(|(p, answers)| {
                if answers.is_empty() {
                    f(p, "")
                } else {
                    answers.iter().map(|a| f(p, a)).fold(0.0, f64::max)
                }
            })
            .sum::<f64>()
    };
    (best(squad_exact) / n, best(squad_f1) / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics_on_a_small_case() {
        let gold = [1, 0, 1, 1, 0, 0, 1, 0];
        let pred = [1, 0, 0, 1, 1, 0, 1, 1];
        assert_eq!(accuracy(&pred, &gold), 5.0 / 8.0);
        // tp=3, fp=2, fn=1 → F1 = 6/9
        assert!((f1_for_class(&pred, &gold, 1) - 6.0 / 9.0).abs() < 1e-12);
        // (tp·tn − fp·fn)/sqrt(5·4·3·4) with tn=2
        let expected = (3.0 * 2.0 - 2.0 * 1.0) / (5.0f64 * 4.0 * 3.0 * 4.0).sqrt();
        assert!((matthews(&pred, &gold) - expected).abs() < 1e-12);
    }

    fn tags(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn seqeval_entities_follow_the_default_mode() {
        // An I- after O starts an entity in the default (non-strict) mode; a type change ends one.
        let found = entities(&[tags("B-PER I-PER O I-LOC B-ORG I-MISC")]);
        assert_eq!(
            found,
            vec![
                ("PER".into(), 0, 1),
                ("LOC".into(), 3, 3),
                ("ORG".into(), 4, 4),
                ("MISC".into(), 5, 5)
            ]
        );
        let s = seqeval(
            &[tags("B-PER I-PER O B-LOC")],
            &[tags("B-PER I-PER O B-ORG")],
        );
        assert_eq!((s.precision, s.recall, s.f1), (0.5, 0.5, 0.5));
    }

    #[test]
    fn squad_normalization_and_scores() {
        assert_eq!(normalize_answer("The  Denver Broncos!"), "denver broncos");
        assert_eq!(squad_exact("the Broncos", "Broncos."), 1.0);
        assert!((squad_f1("Denver Broncos team", "Broncos") - 0.5).abs() < 1e-12);
        let (em, f1) = squad(
            &["Denver".into(), "".into()],
            &[vec!["Denver Broncos".into(), "Denver".into()], vec![]],
        );
        assert_eq!((em, f1), (1.0, 1.0));
    }

    #[test]
    fn spearman_averages_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }
}
