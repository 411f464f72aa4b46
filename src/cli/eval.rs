//! `xenon eval MODEL --weights FILE [--data DIR] [--json]`.

use super::common::{
    MAX_BATCH, WeightsArg, backend, count, data_source, load_model_file, model_layers, new_model,
    pipeline, report_verify,
};
use clap::Args;
use std::path::PathBuf;
use xenon_frontend::model_file::TargetKind;
use xenon_frontend::prelude::*;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model file the weights were trained with.
    pub model: PathBuf,
    #[command(flatten)]
    pub weights: WeightsArg,
    /// The data, as for `xenon train --data`: an MNIST directory (default: the bundled
    /// subset), a directory for the model file's array paths, or one `.npz` archive.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Batch size (default 128).
    #[arg(long, default_value_t = 128, value_parser = count::<MAX_BATCH>)]
    pub batch: usize,
    /// Backend: cpu, interp or opencl (default cpu).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// OpenCL device for `--backend opencl` (an index from `xenon devices`; default 0).
    #[arg(long)]
    pub device: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Check the first run of every compiled program against the reference interpreter
    /// (see `xenon train --verify`).
    #[arg(long)]
    pub verify: bool,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let file = load_model_file(&a.model)?;
    let source = data_source(&file, &a.model, a.data.as_ref())?;
    let (input_shape, _) = source.shapes()?;
    let (_, test) = source.load()?;
    let (pipeline, verifier) = pipeline(backend(&a.backend, None, None, a.device)?, a.verify);
    let mut model = new_model(model_layers(&file, &source)?, &input_shape, &source, None)?
        .with_pipeline(pipeline);
    a.weights.load_into(&mut model)?;
    let cost = model.eval_cost(&test, a.batch, &file.cost)?;
    if source.targets() != TargetKind::Classes {
        if a.json {
            println!(
                "{}",
                serde_json::json!({"cost": cost, "cost_name": file.cost.name(), "samples": test.len()})
            );
        } else {
            println!("test samples:       {}", test.len());
            println!("{:<19} {cost:.6}", format!("{}:", file.cost.name()));
        }
        return report_verify(verifier.as_ref(), a.json);
    }
    let metrics = [
        Metric::Misclassification { steps: 1 },
        Metric::Accuracy,
        Metric::LogLoss,
    ];
    let values = model.eval(&test, a.batch, &metrics)?;
    let get = |n: &str| {
        values
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| *v)
            .unwrap_or(f64::NAN)
    };
    if a.json {
        let out = serde_json::json!({
            "test_misclass": 100.0 * get("Top1Misclass"),
            "accuracy": 100.0 * get("Accuracy"),
            "log_loss": get("LogLoss"),
            "cost": cost,
            "samples": test.len(),
        });
        println!("{out}");
    } else {
        println!("test samples:       {}", test.len());
        println!("misclassification:  {:.2}%", 100.0 * get("Top1Misclass"));
        println!("accuracy:           {:.2}%", 100.0 * get("Accuracy"));
        println!("log loss:           {:.4}", get("LogLoss"));
        println!("{:<19} {cost:.4}", format!("{}:", file.cost.name()));
    }
    report_verify(verifier.as_ref(), a.json)
}
