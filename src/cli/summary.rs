//! `xenon summary MODEL [--json]`.

use super::common::{data_model, load_model_file};
use std::path::Path;

pub fn run(path: &Path, json: bool) -> anyhow::Result<()> {
    let file = load_model_file(path)?;
    let (model, input_shape, _) = data_model(&file, path, None, None)?;
    let total = model.num_params();
    if json {
        let layers: Vec<serde_json::Value> = model
            .layer_info()
            .iter()
            .map(|l| serde_json::json!({"name": l.name, "type": l.kind, "output_shape": l.out_shape, "params": l.params}))
            .collect();
        let out = serde_json::json!({"model": path.display().to_string(), "input_shape": input_shape, "layers": layers, "total_params": total});
        println!("{out}");
    } else {
        println!(
            "{:<24} {:<22} {:>16} {:>10}",
            "layer", "type", "output shape", "params"
        );
        println!(
            "{:<24} {:<22} {:>16} {:>10}",
            "(input)",
            "",
            format!("{input_shape:?}"),
            ""
        );
        for l in model.layer_info() {
            println!(
                "{:<24} {:<22} {:>16} {:>10}",
                l.name,
                l.kind,
                format!("{:?}", l.out_shape),
                l.params
            );
        }
        println!("total parameters: {total}");
    }
    Ok(())
}
