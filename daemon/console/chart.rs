//! Bar charts as inline SVG, drawn on the server (no script, nothing for the CSP to allow).

use maud::{Markup, html};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 160;
const AXIS: u32 = 20;

/// One bar: its label and value.
pub struct Bar {
    pub label: String,
    pub value: u64,
}

/// A bar chart titled `title` with an accessible summary; `class` picks its colour.
pub fn bars(title: &str, class: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|bar| bar.value).max().unwrap_or(0).max(1);
    let count = u32::try_from(bars.len()).unwrap_or(u32::MAX).max(1);
    let slot = WIDTH / count;
    let bar_width = slot.saturating_sub(4).max(1);
    let plot = HEIGHT - AXIS;
    let total: u64 = bars.iter().map(|bar| bar.value).sum();
    html! {
        figure class="chart" {
            figcaption { (title) " — " (total) " in all" }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" class=(class)
                aria-label=(format!("{title}: {}", bars.iter().map(|b| format!("{} {}", b.label, b.value)).collect::<Vec<_>>().join(", "))) {
                @for (index, bar) in bars.iter().enumerate() {
                    @let x = u32::try_from(index).unwrap_or(0) * slot + 2;
                    @let height = u32::try_from(bar.value.saturating_mul(u64::from(plot)) / max).unwrap_or(plot);
                    rect x=(x) y=(plot - height) width=(bar_width) height=(height) class="bar" {
                        title { (bar.label) ": " (bar.value) }
                    }
                    @if count <= 16 || index % 2 == 0 {
                        text x=(x + bar_width / 2) y=(HEIGHT - 6) text-anchor="middle" class="axis" { (bar.label) }
                    }
                }
                line x1="0" y1=(plot) x2=(WIDTH) y2=(plot) class="baseline" {}
            }
        }
    }
}
