//! `xenon plot HISTORY... [-o curves.svg]`: learning curves from training histories.

use anyhow::Context;
use clap::Args;
use plotters::prelude::*;
use std::path::PathBuf;
use xenon_frontend::history::History;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// History files written by `xenon train --history` (JSON, or CSV for `.csv`); each
    /// becomes one line per panel, labelled with its file name.
    #[arg(required = true, value_name = "HISTORY")]
    pub histories: Vec<PathBuf>,
    /// The SVG file to write (atomically).
    #[arg(short, long, default_value = "curves.svg")]
    pub output: PathBuf,
}

/// Line colors, in order (the "tab10" palette: distinct, readable on white).
const COLORS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Width and height of one panel, in pixels.
const PANEL: (u32, u32) = (520, 400);

pub fn run(a: PlotArgs) -> anyhow::Result<()> {
    let runs: Vec<(String, History)> = a
        .histories
        .iter()
        .map(|p| {
            let label = p.file_stem().map_or_else(
                || p.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            );
            Ok((label, History::load(p)?))
        })
        .collect::<anyhow::Result<_>>()?;
    if let Some((label, _)) = runs.iter().find(|(_, h)| h.epochs.is_empty()) {
        anyhow::bail!("history {label} has no epochs to plot");
    }
    // The panels: train cost, then every validation metric any run has.
    let mut metrics: Vec<String> = runs.iter().flat_map(|(_, h)| h.metric_names()).collect();
    metrics.sort();
    metrics.dedup();
    let panels: Vec<Option<&str>> = std::iter::once(None)
        .chain(metrics.iter().map(|m| Some(m.as_str())))
        .collect();
    let mut svg = String::new();
    {
        let size = (PANEL.0 * panels.len() as u32, PANEL.1);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let areas = root.split_evenly((1, panels.len()));
        for (area, metric) in areas.iter().zip(&panels) {
            draw_panel(area, &runs, *metric)?;
        }
        root.present().map_err(plot_err)?;
    }
    xenon_runtime::file::write_atomic(&a.output, svg.as_bytes())
        .with_context(|| format!("writing {}", a.output.display()))?;
    println!("wrote {}", a.output.display());
    Ok(())
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e:?}")
}

/// One panel: the train cost (`metric` `None`) or a metric (in percent) per epoch.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    runs: &[(String, History)],
    metric: Option<&str>,
) -> anyhow::Result<()> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|(label, h)| {
            let points = h
                .epochs
                .iter()
                .filter_map(|r| {
                    let y = match metric {
                        None => Some(r.train_cost),
                        Some(m) => r.metrics.get(m).map(|v| 100.0 * v),
                    };
                    y.filter(|y| y.is_finite()).map(|y| (r.epoch as f64, y))
                })
                .collect();
            (label.as_str(), points)
        })
        .collect();
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let y_max = points.map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.05;
    let (title, y_desc) = match metric {
        None => ("train cost".to_string(), "cost".to_string()),
        Some(m) => (format!("test {m}"), format!("{m} (%)")),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .draw()
        .map_err(plot_err)?;
    for (i, (label, points)) in series.into_iter().enumerate() {
        let (r, g, b) = COLORS[i % COLORS.len()];
        let color = RGBColor(r, g, b).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}
