//! A small weighted LRU for caches keyed by content hashes.

use std::collections::HashMap;
use std::hash::Hash as StdHash;

/// Least-recently-used map bounded by the total weight of its entries.
pub struct Lru<K, V> {
    map: HashMap<K, (V, usize, u64)>,
    capacity: usize,
    weight: usize,
    tick: u64,
}

impl<K: StdHash + Eq + Clone, V: Clone> Lru<K, V> {
    pub fn new(capacity: usize) -> Self {
        Lru {
            map: HashMap::new(),
            capacity,
            weight: 0,
            tick: 0,
        }
    }

    pub fn get(&mut self, k: &K) -> Option<V> {
        self.tick += 1;
        let t = self.tick;
        self.map.get_mut(k).map(|e| {
            e.2 = t;
            e.0.clone()
        })
    }

    pub fn remove(&mut self, k: &K) {
        if let Some(old) = self.map.remove(k) {
            self.weight -= old.1;
        }
    }

    pub fn insert(&mut self, k: K, v: V, weight: usize) {
        if weight > self.capacity {
            return;
        }
        self.tick += 1;
        if let Some(old) = self.map.insert(k, (v, weight, self.tick)) {
            self.weight -= old.1;
        }
        self.weight += weight;
        while self.weight > self.capacity {
            // evict the oldest quarter at once: amortised O(1) per insert
            let mut ticks: Vec<u64> = self.map.values().map(|e| e.2).collect();
            ticks.sort_unstable();
            let cut = ticks[ticks.len() / 4];
            let mut freed = 0;
            self.map.retain(|_, e| {
                if e.2 <= cut {
                    freed += e.1;
                    false
                } else {
                    true
                }
            });
            self.weight -= freed;
        }
    }
}
