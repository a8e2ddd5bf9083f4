//! Latency histograms of `istio_request_duration_milliseconds`: bucket
//! deltas summed over a window, and quantiles by linear interpolation within
//! the bucket that holds the rank (as Prometheus' `histogram_quantile`).

/// Per-bucket (not cumulative) counts; `bounds[i]` is bucket i's upper bound
/// (`le`), ascending; a final `+Inf` bound may be present.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
}

impl Histogram {
    /// One rollup row's buckets. Prometheus buckets are cumulative and a
    /// delta of cumulative counters stays cumulative, but a writer may also
    /// store per-bucket counts; they are told apart by the total: per-bucket
    /// counts can never sum past the request count, cumulative ones (with
    /// mass below the last bucket) always do. Requests above the largest
    /// bound land in an implicit `+Inf` bucket.
    pub fn from_row(bounds: &[f64], counts: &[i64], requests: u64) -> Histogram {
        let n = bounds.len().min(counts.len());
        let raw: Vec<u64> = counts[..n].iter().map(|&c| c.max(0) as u64).collect();
        let sum: u64 = raw.iter().sum();
        let monotone = raw.windows(2).all(|w| w[0] <= w[1]);
        let mut counts = if monotone && sum > requests {
            let mut prev = 0;
            raw.iter()
                .map(|&c| {
                    let d = c - prev;
                    prev = c;
                    d
                })
                .collect()
        } else {
            raw
        };
        let mut bounds = bounds[..n].to_vec();
        let seen: u64 = counts.iter().sum();
        // Without any bound there is nothing to place requests in: empty.
        if n > 0 && requests > seen && bounds.last().is_some_and(|b| b.is_finite()) {
            bounds.push(f64::INFINITY);
            counts.push(requests - seen);
        }
        Histogram { bounds, counts }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other` bucket by bucket; bounds present in only one side are kept.
    pub fn merge(&mut self, other: &Histogram) {
        if self.bounds == other.bounds {
            for (a, b) in self.counts.iter_mut().zip(&other.counts) {
                *a += b;
            }
            return;
        }
        for (&bound, &count) in other.bounds.iter().zip(&other.counts) {
            match self.bounds.iter().position(|&b| b >= bound) {
                Some(i) if self.bounds[i] == bound => self.counts[i] += count,
                Some(i) => {
                    self.bounds.insert(i, bound);
                    self.counts.insert(i, count);
                }
                None => {
                    self.bounds.push(bound);
                    self.counts.push(count);
                }
            }
        }
    }

    /// The `q` quantile (0..=1) in milliseconds, `None` when empty. Within a
    /// bucket the values are assumed spread evenly; a rank in the `+Inf`
    /// bucket answers with the largest finite bound (nothing better is known).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        let mut lower = 0.0;
        for (&bound, &count) in self.bounds.iter().zip(&self.counts) {
            if count > 0 && (below + count) as f64 >= rank {
                if !bound.is_finite() {
                    return Some(lower);
                }
                let within = (rank - below as f64) / count as f64;
                return Some(lower + (bound - lower) * within);
            }
            below += count;
            if bound.is_finite() {
                lower = bound;
            }
        }
        Some(lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: [f64; 4] = [10.0, 50.0, 100.0, f64::INFINITY];

    #[test]
    fn cumulative_and_per_bucket_rows_agree() {
        let cumulative = Histogram::from_row(&BOUNDS, &[50, 90, 100, 100], 100);
        let per_bucket = Histogram::from_row(&BOUNDS, &[50, 40, 10, 0], 100);
        assert_eq!(cumulative, per_bucket);
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let h = Histogram::from_row(&BOUNDS, &[50, 40, 10, 0], 100);
        // rank 50 is the top of the first bucket.
        assert_eq!(h.quantile(0.5), Some(10.0));
        // rank 70: 20 of the 40 in (10, 50] → halfway.
        assert_eq!(h.quantile(0.7), Some(30.0));
        // rank 99: 9 of the 10 in (50, 100].
        assert!((h.quantile(0.99).unwrap() - 95.0).abs() < 1e-9);
    }

    #[test]
    fn overflow_answers_the_largest_finite_bound() {
        // No +Inf bucket stored and 10 requests beyond 100ms.
        let h = Histogram::from_row(&[10.0, 100.0], &[0, 90], 100);
        assert_eq!(h.quantile(0.99), Some(100.0));
    }

    #[test]
    fn merge_adds_buckets_even_with_different_bounds() {
        let mut a = Histogram::from_row(&BOUNDS, &[1, 1, 1, 1], 4);
        a.merge(&Histogram::from_row(&BOUNDS, &[1, 0, 0, 0], 1));
        assert_eq!(a.total(), 5);
        a.merge(&Histogram::from_row(&[25.0], &[2], 2));
        assert_eq!(a.total(), 7);
        assert_eq!(a.quantile(0.0), Some(0.0));
    }

    #[test]
    fn empty_has_no_quantile() {
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
