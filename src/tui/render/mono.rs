//! The dashboard without colour (`NO_COLOR`, `--color never`): each colour the panels use for
//! meaning becomes a text attribute, so nothing is said by colour alone. The screen is drawn in
//! colour and then rewritten here, so the panels keep one palette and one code path.
//!
//! | colour (what it says) | becomes |
//! |---|---|
//! | any background (status pills, the overload banner) | reverse video |
//! | red (failure, overload, a model far off) | bold and underlined |
//! | yellow, magenta (a warning, the model's p99) | bold |
//! | dark grey (axes, hints, knob-change markers) | dim |
//! | the rest | plain |
//!
//! The charts, where colour tells series apart, draw each series with its own marker instead
//! (see `charts`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

/// Rewrites every cell of `area` without colour.
pub fn strip(area: Rect, buf: &mut Buffer) {
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.modifier = mono(cell.style()).add_modifier;
                cell.fg = Color::Reset;
                cell.bg = Color::Reset;
            }
        }
    }
}

/// The attributes that carry what `s`'s colours said.
fn mono(s: Style) -> Style {
    let mut m = s.add_modifier;
    // A background the same as the text's colour is a solid glyph (a chart's block marker), not
    // a highlight.
    if s.bg.is_some_and(|c| c != Color::Reset && Some(c) != s.fg) {
        m |= Modifier::REVERSED;
    } else {
        m |= match s.fg {
            Some(Color::Red | Color::LightRed) => Modifier::BOLD | Modifier::UNDERLINED,
            Some(Color::Yellow | Color::LightYellow | Color::Magenta | Color::LightMagenta) => Modifier::BOLD,
            Some(Color::DarkGray) => Modifier::DIM,
            _ => Modifier::empty(),
        };
    }
    Style::default().add_modifier(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_become_attributes_and_none_remains() {
        let area = Rect::new(0, 0, 4, 1);
        let mut buf = Buffer::empty(area);
        let styles = [
            Style::default().fg(Color::Red),
            Style::default().fg(Color::Yellow),
            Style::default().fg(Color::Black).bg(Color::Green),
            Style::default().fg(Color::DarkGray),
        ];
        for (x, st) in styles.iter().enumerate() {
            buf[(x as u16, 0)].set_style(*st);
        }
        strip(area, &mut buf);
        let mods: Vec<Modifier> = (0..4).map(|x| buf[(x, 0)].modifier).collect();
        assert_eq!(mods, [Modifier::BOLD | Modifier::UNDERLINED, Modifier::BOLD, Modifier::REVERSED, Modifier::DIM]);
        assert!((0..4).all(|x| buf[(x, 0)].fg == Color::Reset && buf[(x, 0)].bg == Color::Reset));
    }
}
