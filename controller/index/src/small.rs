//! A map for a few entries: a sorted `Vec`. A key of the index is defined once almost always,
//! and a one-entry `BTreeMap` allocates a whole node (hundreds of bytes) where this allocates
//! one entry: at a hundred thousand keys, that is the difference between tens of megabytes and
//! a few.

/// Entries sorted by key, each key once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// A map of one entry.
    pub(crate) fn one(key: K, value: V) -> Self {
        Self(vec![(key, value)])
    }

    /// Inserts `value` under `key`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.0.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        let (_, value) = self.0.remove(i);
        if self.0.is_empty() {
            self.0.shrink_to_fit();
        }
        Some(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The entries in key order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn keys(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// The entry with the greatest key.
    pub(crate) fn last_key_value(&self) -> Option<(&K, &V)> {
        self.0.last().map(|(k, v)| (k, v))
    }
}

impl<'a, K, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = &'a (K, V);
    type IntoIter = std::slice::Iter<'a, (K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_sorted_and_once() {
        let mut map = SmallMap::default();
        assert_eq!(map.insert(3, "c"), None);
        assert_eq!(map.insert(1, "a"), None);
        assert_eq!(map.insert(2, "b"), None);
        assert_eq!(map.insert(2, "B"), Some("b"));
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(map.last_key_value(), Some((&3, &"c")));
        assert_eq!(map.remove(&1), Some("a"));
        assert_eq!(map.remove(&1), None);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), ["B", "c"]);
        assert_eq!(map.len(), 2);
        assert_eq!(SmallMap::one(1, "x"), {
            let mut m = SmallMap::default();
            m.insert(1, "x");
            m
        });
    }
}
