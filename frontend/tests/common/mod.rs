//! Helpers shared by the frontend's integration tests.

/// Every model file in `examples/models/` (YAML and JSON), sorted.
pub fn example_models() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/models");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 4, "{v:?}");
    v
}
