//! `xenon devices [--json]`: the OpenCL platforms and devices `--device N` chooses from.

#[cfg(feature = "opencl")]
pub fn run(json: bool) -> anyhow::Result<()> {
    let devices = xenon_runtime::opencl::devices()?;
    if json {
        let list: Vec<serde_json::Value> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| serde_json::json!({"index": i, "device": d.to_string()}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else if devices.is_empty() {
        println!("no OpenCL device found (install an OpenCL platform, e.g. pocl-opencl-icd)");
    } else {
        for d in &devices {
            println!("{d}");
        }
    }
    Ok(())
}

#[cfg(not(feature = "opencl"))]
pub fn run(_json: bool) -> anyhow::Result<()> {
    anyhow::bail!("this build of Xenon has no OpenCL support (build with `--features opencl`)")
}
