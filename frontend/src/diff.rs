//! Line diff of two YAML texts (longest common subsequence), to show what
//! an edit or a rollback changes before it is saved, as `kubectl diff` does.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Same,
    Added,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub change: Change,
    pub text: String,
}

/// Texts longer than this many lines (product of both) are shown whole as
/// removed/added rather than diffed: the table is O(n·m) and resources are small.
const MAX_CELLS: usize = 4_000_000;

pub fn line_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let line = |change, text: &str| DiffLine {
        change,
        text: text.to_string(),
    };
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return a
            .iter()
            .map(|t| line(Change::Removed, t))
            .chain(b.iter().map(|t| line(Change::Added, t)))
            .collect();
    }
    // lcs[i][j] = length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(line(Change::Same, a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push(line(Change::Added, b[j]));
            j += 1;
        } else {
            out.push(line(Change::Removed, a[i]));
            i += 1;
        }
    }
    out
}

/// Only the changed lines and `context` lines around them; `None` marks a gap.
pub fn with_context(diff: &[DiffLine], context: usize) -> Vec<Option<DiffLine>> {
    let changed: Vec<usize> = diff
        .iter()
        .enumerate()
        .filter(|(_, l)| l.change != Change::Same)
        .map(|(i, _)| i)
        .collect();
    let keep = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= context);
    let mut out = Vec::new();
    let mut gap = false;
    for (i, l) in diff.iter().enumerate() {
        if keep(i) {
            if gap && !out.is_empty() {
                out.push(None);
            }
            gap = false;
            out.push(Some(l.clone()));
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(d: &[DiffLine]) -> String {
        d.iter()
            .map(|l| {
                let sign = match l.change {
                    Change::Same => ' ',
                    Change::Added => '+',
                    Change::Removed => '-',
                };
                format!("{sign}{}", l.text)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_changed_weight_is_one_removed_and_one_added_line() {
        let old = "route:\n- subset: v1\n  weight: 50\n- subset: v2\n  weight: 50";
        let new = "route:\n- subset: v1\n  weight: 0\n- subset: v2\n  weight: 50";
        assert_eq!(
            render(&line_diff(old, new)),
            " route:\n - subset: v1\n-  weight: 50\n+  weight: 0\n - subset: v2\n   weight: 50"
        );
    }

    #[test]
    fn identical_texts_have_no_changes() {
        assert!(
            line_diff("a\nb", "a\nb")
                .iter()
                .all(|l| l.change == Change::Same)
        );
        assert!(line_diff("", "").is_empty());
    }

    #[test]
    fn context_elides_unchanged_runs() {
        let old: String = (0..20).map(|i| format!("l{i}\n")).collect();
        let new = old.replace("l10\n", "L10\n");
        let shown = with_context(&line_diff(&old, &new), 1);
        let texts: Vec<String> = shown
            .iter()
            .map(|l| l.as_ref().map(|l| l.text.clone()).unwrap_or("…".into()))
            .collect();
        assert_eq!(texts, ["l9", "l10", "L10", "l11"]);
    }
}
