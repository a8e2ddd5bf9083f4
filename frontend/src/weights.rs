//! Canary weight arithmetic: when one destination's weight moves, the
//! others share the remainder in proportion to what they had, so a route
//! always sums to exactly 100 (Istio requires it).

/// New weights after destination `changed` is set to `value` (clamped to
/// 0..=100). Integer shares by largest remainder, ties to the earlier
/// destination, so the result is deterministic and sums to 100.
pub fn rebalance(weights: &[u32], changed: usize, value: u32) -> Vec<u32> {
    let n = weights.len();
    if n == 0 || changed >= n {
        return weights.to_vec();
    }
    let value = value.min(100);
    if n == 1 {
        return vec![100];
    }
    let remainder = 100 - value;
    let others: Vec<usize> = (0..n).filter(|&i| i != changed).collect();
    let total: u32 = others.iter().map(|&i| weights[i]).sum();
    // Shares in proportion to the old weights; equal shares when all were 0.
    let exact: Vec<f64> = others
        .iter()
        .map(|&i| {
            if total == 0 {
                remainder as f64 / others.len() as f64
            } else {
                remainder as f64 * weights[i] as f64 / total as f64
            }
        })
        .collect();
    let mut out = vec![0u32; n];
    out[changed] = value;
    let mut given = 0;
    for (k, &i) in others.iter().enumerate() {
        out[i] = exact[k].floor() as u32;
        given += out[i];
    }
    let mut order: Vec<usize> = (0..others.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    for &k in order.iter().take((remainder - given) as usize) {
        out[others[k]] += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remainder_is_shared_in_proportion() {
        assert_eq!(rebalance(&[50, 50, 0], 2, 100), [0, 0, 100]);
        assert_eq!(rebalance(&[80, 20], 0, 50), [50, 50]);
        assert_eq!(rebalance(&[60, 30, 10], 2, 40), [40, 20, 40]);
    }

    #[test]
    fn all_zero_others_share_equally() {
        assert_eq!(rebalance(&[0, 0, 100], 2, 10), [45, 45, 10]);
        assert_eq!(rebalance(&[0, 0, 100], 2, 0), [50, 50, 0]);
    }

    #[test]
    fn always_sums_to_100() {
        for a in 0..=100 {
            for v in [0, 1, 33, 99, 100, 150] {
                let w = rebalance(&[a, 100 - a, 7], 1, v);
                assert_eq!(w.iter().sum::<u32>(), 100, "{w:?}");
            }
        }
        assert_eq!(rebalance(&[3], 0, 40), [100]);
    }
}
