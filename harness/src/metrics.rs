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
    let tp = pred.iter().zip(gold).filter(|&(&p, &g)| p == positive && g == positive).count() as f64;
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
    (0..num_classes).map(|c| f1_for_class(pred, gold, c)).sum::<f64>() / num_classes as f64
}

/// Matthews correlation coefficient for binary labels (sklearn `matthews_corrcoef`), 0 when undefined.
pub fn matthews(pred: &[usize], gold: &[usize]) -> f64 {
    let count = |p: usize, g: usize| pred.iter().zip(gold).filter(|&(&a, &b)| a == p && b == g).count() as f64;
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

    #[test]
    fn spearman_averages_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }
}
