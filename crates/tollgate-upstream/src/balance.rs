//! Choosing a target.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Picks the index of the next target. Implementations are shared by all workers and must not
/// lock; they are rebuilt (or kept, when unchanged) with each configuration snapshot.
pub trait Balancer: Send + Sync + std::fmt::Debug {
    /// The next target index, or `None` when no target can take traffic.
    fn select(&self) -> Option<usize>;
}

/// Smooth weighted round robin (nginx's algorithm), precomputed: the schedule one full cycle
/// produces is stored once, and selection is one atomic increment, so it never locks and
/// spreads each target's turns evenly across the cycle (weights 5,1,1 give a a b a c a a).
#[derive(Debug)]
pub struct SmoothWeightedRoundRobin {
    schedule: Box<[u32]>,
    cursor: AtomicUsize,
}

/// Cycles longer than this are scaled down (weights keep their proportions approximately).
const MAX_SCHEDULE: u64 = 1 << 16;

impl SmoothWeightedRoundRobin {
    /// A balancer over targets with these weights (0 = never selected).
    pub fn new(weights: &[u32]) -> Self {
        let weights = scale(weights);
        let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
        let mut current = vec![0i64; weights.len()];
        let mut schedule = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                current[i] += i64::from(*w);
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            schedule.push(u32::try_from(best).unwrap_or(0));
        }
        Self {
            schedule: schedule.into_boxed_slice(),
            cursor: AtomicUsize::new(0),
        }
    }
}

fn scale(weights: &[u32]) -> Vec<u32> {
    let gcd = weights
        .iter()
        .copied()
        .filter(|w| *w > 0)
        .fold(0u32, gcd)
        .max(1);
    let reduced: Vec<u32> = weights.iter().map(|w| w / gcd).collect();
    let total: u64 = reduced.iter().map(|w| u64::from(*w)).sum();
    if total <= MAX_SCHEDULE {
        return reduced;
    }
    reduced
        .iter()
        .map(|w| {
            if *w == 0 {
                0
            } else {
                u32::try_from((u64::from(*w) * MAX_SCHEDULE / total).max(1)).unwrap_or(1)
            }
        })
        .collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Balancer for SmoothWeightedRoundRobin {
    fn select(&self) -> Option<usize> {
        if self.schedule.is_empty() {
            return None;
        }
        let n = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.schedule
            .get(n % self.schedule.len())
            .map(|i| *i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_nginx_sequence() {
        let b = SmoothWeightedRoundRobin::new(&[5, 1, 1]);
        let picks: Vec<usize> = (0..7).map(|_| b.select().unwrap()).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn respects_proportions_and_zero_weights() {
        let b = SmoothWeightedRoundRobin::new(&[3, 0, 1]);
        let mut counts = [0; 3];
        for _ in 0..400 {
            counts[b.select().unwrap()] += 1;
        }
        assert_eq!(counts, [300, 0, 100]);
        assert_eq!(SmoothWeightedRoundRobin::new(&[0, 0]).select(), None);
    }

    #[test]
    fn huge_weights_are_scaled() {
        let b = SmoothWeightedRoundRobin::new(&[u32::MAX, u32::MAX / 2]);
        assert!(b.schedule.len() as u64 <= MAX_SCHEDULE + 2);
        let first: Vec<usize> = (0..3).map(|_| b.select().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 0]);
    }
}
