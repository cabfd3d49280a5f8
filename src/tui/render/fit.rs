//! Lines that fit their width by one rule, so small terminals lose whole fields, never the
//! ends of words: a line is a list of fields, each with a rank; while the line is too wide, the
//! lowest-ranked field goes (of equal ranks, the rightmost). Ranks say what matters most: a
//! knob's name and value outrank its details, a count that is not zero outranks one that is.

use ratatui::text::{Line, Span};

/// What must stay: the label and value of a line.
pub const KEEP: u8 = 9;
/// A detail worth keeping if anything is.
pub const HIGH: u8 = 5;
/// A detail.
pub const MID: u8 = 3;
/// The first to go.
pub const LOW: u8 = 1;

/// Which of the items ranked `ranks` goes first: the lowest rank below [`KEEP`], of equals the
/// last.
fn first_to_go(ranks: impl Iterator<Item = u8>) -> Option<usize> {
    ranks.enumerate().filter(|(_, r)| *r < KEEP).min_by_key(|(i, r)| (*r, usize::MAX - i)).map(|(i, _)| i)
}

/// The fields of `fields` that fit in `width` columns, by rank (see the module doc).
#[must_use]
pub fn fit(mut fields: Vec<(u8, Span<'static>)>, width: usize) -> Line<'static> {
    let wide = |f: &[(u8, Span<'static>)]| f.iter().map(|(_, s)| s.width()).sum::<usize>();
    while wide(&fields) > width {
        let Some(drop) = first_to_go(fields.iter().map(|(rank, _)| *rank)) else { break };
        fields.remove(drop);
    }
    Line::from(fields.into_iter().map(|(_, s)| s).collect::<Vec<_>>())
}

/// The lines of `lines` that fit in `height` rows of `width` columns (a line longer than the
/// width wraps onto more rows), by the same rule: lowest rank first, of equals the lowest line.
/// The kept lines stay in their order.
#[must_use]
pub fn fit_rows(mut lines: Vec<(u8, Line<'static>)>, width: usize, height: usize) -> Vec<Line<'static>> {
    let rows =
        |l: &[(u8, Line<'static>)]| l.iter().map(|(_, x)| x.width().div_ceil(width.max(1)).max(1)).sum::<usize>();
    while rows(&lines) > height {
        let Some(drop) = first_to_go(lines.iter().map(|(rank, _)| *rank)) else { break };
        lines.remove(drop);
    }
    lines.into_iter().map(|(_, l)| l).collect()
}

/// A count's rank: kept longer when it is not zero.
#[must_use]
pub fn count_rank(n: u64, rank: u8) -> u8 {
    if n == 0 { LOW } else { rank }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line<'_>) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn drops_the_lowest_rank_first_and_the_rightmost_of_equals() {
        let f = || {
            vec![
                (KEEP, Span::raw("timeout off ")),
                (MID, Span::raw("cv 1.00 ")),
                (HIGH, Span::raw("kind sleep ")),
                (MID, Span::raw("x 1")),
            ]
        };
        assert_eq!(text(&fit(f(), 80)), "timeout off cv 1.00 kind sleep x 1");
        assert_eq!(text(&fit(f(), 31)), "timeout off cv 1.00 kind sleep ");
        assert_eq!(text(&fit(f(), 25)), "timeout off kind sleep ");
        assert_eq!(text(&fit(f(), 5)), "timeout off ", "what must stay stays, cut by the panel");
    }

    #[test]
    fn rows_drop_by_rank_and_count_wrapped_lines() {
        let l = |r: u8, t: &'static str| (r, Line::from(t));
        let lines = || vec![l(KEEP, "head"), l(LOW, "rho"), l(HIGH, "resp"), l(MID, "a line long enough to wrap")];
        let texts = |v: Vec<Line<'static>>| v.iter().map(|x| text(x)).collect::<Vec<_>>();
        assert_eq!(texts(fit_rows(lines(), 40, 4)).len(), 4);
        assert_eq!(texts(fit_rows(lines(), 20, 4)), ["head", "resp", "a line long enough to wrap"]);
        assert_eq!(texts(fit_rows(lines(), 20, 2)), ["head", "resp"]);
    }
}
