//! The order of training examples in an epoch and the chunks of dev predictions.

use anyhow::Result;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::records::settings::Batching;

/// One epoch's training batches, of similar length as HF's `group_by_length` makes them: shuffle,
/// cut into mega-batches of 50 batches, sort each by size (longest first), cut into batches, then
/// shuffle the batches. Padding to the longest in a batch then costs little (RTE: 67 instead of
/// 126 tokens a row on average).
pub fn length_grouped_batches(
    sizes: &[usize],
    batch_size: usize,
    rng: &mut StdRng,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.shuffle(rng);
    let mut batches: Vec<Vec<usize>> = vec![];
    for mega in order.chunks_mut(batch_size * 50) {
        mega.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
        batches.extend(mega.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// One epoch's training batches as `batching` asks: length-grouped, or a plain shuffle cut into
/// batches (a PyTorch `RandomSampler`'s order, drawn from `rng`).
pub fn epoch_batches(
    sizes: &[usize],
    batch_size: usize,
    batching: Batching,
    rng: &mut StdRng,
) -> Vec<Vec<usize>> {
    match batching {
        Batching::Grouped => length_grouped_batches(sizes, batch_size, rng),
        Batching::Random => {
            let mut order: Vec<usize> = (0..sizes.len()).collect();
            order.shuffle(rng);
            order.chunks(batch_size).map(<[usize]>::to_vec).collect()
        }
    }
}

/// Predictions for every dev unit, in dev order: the units go through `predict` in chunks of
/// similar size (little padding), longest first, each chunk about as large in padded size as
/// `chunk_size` of the longest units (`size_sorted_chunks`).
pub fn predict_in_chunks<T, P>(
    units: &[T],
    size: impl Fn(&T) -> usize,
    chunk_size: usize,
    mut predict: impl FnMut(&[&T]) -> Result<Vec<P>>,
) -> Result<Vec<P>> {
    let sizes: Vec<usize> = units.iter().map(size).collect();
    let chunks = size_sorted_chunks(&sizes, chunk_size);
    let mut predictions = Vec::with_capacity(units.len());
    for chunk in &chunks {
        let refs: Vec<&T> = chunk.iter().map(|&i| &units[i]).collect();
        predictions.extend(predict(&refs)?);
    }
    Ok(in_dev_order(&chunks, predictions))
}

/// Dev indices in chunks of similar size, longest first, for evaluation; `in_dev_order` puts the
/// predictions back. Chunks are sized by padded size, not count: the longest units go
/// `chunk_size` at a time, shorter ones as many as fit in the same budget (count × the chunk's
/// longest size; sizes are characters, a proxy for tokens), at most `MAX_CHUNK_FACTOR` ×
/// `chunk_size`: larger matmuls for short sentences at the memory of the longest chunk.
fn size_sorted_chunks(sizes: &[usize], chunk_size: usize) -> Vec<Vec<usize>> {
    const MAX_CHUNK_FACTOR: usize = 8;
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let budget = chunk_size * order.first().map_or(1, |&i| sizes[i].max(1));
    let mut chunks = vec![];
    let mut rest = &order[..];
    while let Some(&first) = rest.first() {
        let most = MAX_CHUNK_FACTOR * chunk_size.max(1);
        let fits = (budget / sizes[first].max(1)).clamp(chunk_size.max(1), most);
        let (chunk, tail) = rest.split_at(fits.min(rest.len()));
        chunks.push(chunk.to_vec());
        rest = tail;
    }
    chunks
}

/// Predictions made chunk by chunk (`size_sorted_chunks`) back in dev order.
fn in_dev_order<T>(chunks: &[Vec<usize>], predictions: Vec<T>) -> Vec<T> {
    let mut placed: Vec<(usize, T)> = chunks.iter().flatten().copied().zip(predictions).collect();
    placed.sort_by_key(|(i, _)| *i);
    placed.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::settings::Subset;
    use crate::run::tasks::task::take_subset;
    use rand::SeedableRng;

    #[test]
    fn grouped_batches_cover_every_example_once_with_similar_sizes() {
        let sizes: Vec<usize> = (0..1000).map(|i| (i * 7919) % 300).collect();
        let batches = length_grouped_batches(&sizes, 16, &mut StdRng::seed_from_u64(3));
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        // Within a batch sizes are close: the spread is far below the 0..300 range.
        let spread: usize = batches
            .iter()
            .map(|b| {
                b.iter().map(|&i| sizes[i]).max().unwrap()
                    - b.iter().map(|&i| sizes[i]).min().unwrap()
            })
            .max()
            .unwrap();
        assert!(spread < 60, "spread {spread}");
        let again = length_grouped_batches(&sizes, 16, &mut StdRng::seed_from_u64(3));
        assert_eq!(batches, again);
    }

    #[test]
    fn random_batches_are_a_shuffle_cut_in_order() {
        let sizes = vec![1; 50];
        let batches = epoch_batches(&sizes, 16, Batching::Random, &mut StdRng::seed_from_u64(3));
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [16, 16, 16, 2]
        );
        let mut order: Vec<usize> = (0..50).collect();
        order.shuffle(&mut StdRng::seed_from_u64(3));
        assert_eq!(batches.concat(), order);
    }

    #[test]
    fn the_first_subset_keeps_the_file_order() {
        let (mut train, mut dev): (Vec<usize>, Vec<usize>) = ((0..10).collect(), (0..10).collect());
        take_subset(&mut train, &mut dev, Some(4), Some(3), Subset::First);
        assert_eq!((train, dev), (vec![0, 1, 2, 3], vec![0, 1, 2]));
        let mut train: Vec<usize> = (0..10).collect();
        take_subset(&mut train, &mut vec![], Some(4), None, Subset::Random);
        assert_ne!(train, vec![0, 1, 2, 3]);
    }

    #[test]
    fn sorted_chunks_round_trip_to_dev_order() {
        let sizes = vec![3, 9, 1, 9, 4];
        let chunks = size_sorted_chunks(&sizes, 2);
        // Budget 2 × 9: two of the longest, then all three short ones (3 × 4 ≤ 18).
        assert_eq!(chunks, vec![vec![1, 3], vec![4, 0, 2]]);
        let predictions: Vec<usize> = chunks.iter().flatten().map(|&i| i * 10).collect();
        assert_eq!(in_dev_order(&chunks, predictions), vec![0, 10, 20, 30, 40]);
    }
}
