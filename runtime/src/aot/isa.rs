//! Does this processor have what a bundle's code needs?

/// The x86 features a bundle may name, each with whether the running processor has it.
/// Names are those of Rust's `is_x86_feature_detected!`.
pub fn host_has(feature: &str) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! table {
            ($($f:tt),*) => {
                match feature {
                    $($f => Some(std::is_x86_feature_detected!($f)),)*
                    _ => None,
                }
            };
        }
        table!(
            "sse3",
            "ssse3",
            "sse4.1",
            "sse4.2",
            "popcnt",
            "cmpxchg16b",
            "avx",
            "avx2",
            "fma",
            "bmi1",
            "bmi2",
            "lzcnt",
            "f16c",
            "movbe",
            "xsave",
            "avxvnni",
            "avx512f",
            "avx512bw",
            "avx512cd",
            "avx512dq",
            "avx512vl",
            "avx512vbmi",
            "avx512vnni",
            "avx512bitalg"
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        None
    }
}

/// The features of `required` that a processor lacks, given `has(feature)` (`None`: a
/// feature it does not know, counted as missing).
pub fn missing(required: &[String], has: &dyn Fn(&str) -> Option<bool>) -> Vec<String> {
    required
        .iter()
        .filter(|f| has(f) != Some(true))
        .cloned()
        .collect()
}

/// The architecture this runtime runs on, as a bundle's `target.arch` names it.
pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
}
