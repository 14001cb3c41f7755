//! Pure CPU work spread over the cores with the order kept, so that the result is the same as a
//! sequential map: for the index's producers and consumers (parsing documents, building catalog
//! entries, translating services), which are pure functions of their input.

/// The number of threads a map spreads over: one per core.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Maps `items` with `f`, in order, on up to one thread per core; inputs of fewer than
/// `2 * min_per_thread` items stay on the calling thread.
pub fn map_ordered<T, R, F>(items: &[T], min_per_thread: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = cores();
    let per_thread = items.len().div_ceil(threads).max(min_per_thread.max(1));
    if items.len() <= per_thread {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per_thread)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order() {
        let items: Vec<u32> = (0..10_000).collect();
        let doubled = map_ordered(&items, 10, |i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(map_ordered(&[1, 2], 10, |i| i + 1), [2, 3]);
        assert_eq!(map_ordered(&[] as &[u8], 0, |i| *i), Vec::<u8>::new());
    }
}
