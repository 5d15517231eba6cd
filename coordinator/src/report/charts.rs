//! The metrics' 12-month trends as inline SVG, drawn with plotters' SVG
//! backend: no script, no font files, no outside request, and the same
//! series give the same bytes. Text in the SVG is only ours (period names,
//! series names, numbers), never a string from the store.

use plotters::prelude::*;

use super::metrics::Metric;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 240;
/// One colour per series, in order (critical red first, as MTTR lists them).
const COLOURS: [RGBColor; 4] =
    [RGBColor(0xb0, 0x1c, 0x2e), RGBColor(0xd9, 0x6c, 0x06), RGBColor(0x2b, 0x6c, 0xb0), RGBColor(0x4a, 0x7a, 0x3a)];

/// The metric as an SVG chart, or `None` when it has no value at all.
pub fn svg(m: &Metric) -> Option<String> {
    let max = m
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .copied()
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))?;
    let mut out = String::new();
    draw(m, max, &mut out).ok()?;
    // Inline in HTML the namespace is implied; without it the page names no
    // URL at all. The label is our own title, for screen readers.
    let labelled = format!("<svg role=\"img\" aria-label=\"{} chart\"", m.title);
    Some(out.replacen(&format!(" xmlns=\"{SVG_NS}\""), "", 1).replacen("<svg", &labelled, 1))
}

const SVG_NS: &str = "http://www.w3.org/2000/svg";

fn draw(m: &Metric, max: f64, out: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = m.periods.len().max(1) as i32;
    let top = if max <= 0.0 { 1.0 } else { max * 1.15 };
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(26)
        .y_label_area_size(52)
        .build_cartesian_2d(-0.5f64..(f64::from(n) - 0.5), 0f64..top)?;
    let periods = m.periods.clone();
    let label = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 0.01 || i < 0.0 {
            return String::new();
        }
        periods.get(i as usize).map(|p| p.to_string()).unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(m.periods.len())
        .x_label_formatter(&label)
        .y_labels(5)
        .y_label_formatter(&|v| super::html::number(*v))
        .y_desc(m.unit.as_str())
        .label_style(("sans-serif", 11))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()?;
    for (i, s) in m.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(f64, f64)> =
            s.values.iter().enumerate().filter_map(|(x, v)| v.map(|v| (x as f64, v))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
    }
    if m.series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(0xcc, 0xcc, 0xcc))
            .label_font(("sans-serif", 11))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
