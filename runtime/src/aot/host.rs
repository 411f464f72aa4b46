//! The host functions generated code calls, by symbol name.
//!
//! Kernels compute f64 `exp`, `log` and `tanh` by calling `xenon_exp_f64`,
//! `xenon_log_f64` and `xenon_tanh_f64` (exported with those names, so a C program that
//! links the runtime library resolves them); Cranelift may call C's rounding and `fma`
//! functions on processors without SSE4.1 or FMA. [`resolve`] gives the addresses the
//! run-time loader binds.

/// `exp(x)` for generated f64 code.
#[unsafe(no_mangle)]
pub extern "C" fn xenon_exp_f64(x: f64) -> f64 {
    x.exp()
}

/// `log(x)` (natural) for generated f64 code.
#[unsafe(no_mangle)]
pub extern "C" fn xenon_log_f64(x: f64) -> f64 {
    x.ln()
}

/// `tanh(x)` for generated f64 code.
#[unsafe(no_mangle)]
pub extern "C" fn xenon_tanh_f64(x: f64) -> f64 {
    x.tanh()
}

/// The f64 functions generated code calls: `(symbol, function)`.
pub const F64_FUNCTIONS: [(&str, extern "C" fn(f64) -> f64); 3] = [
    ("xenon_exp_f64", xenon_exp_f64),
    ("xenon_log_f64", xenon_log_f64),
    ("xenon_tanh_f64", xenon_tanh_f64),
];

extern "C" fn ceilf(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn floorf(x: f32) -> f32 {
    x.floor()
}
extern "C" fn truncf(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn nearbyintf(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn ceil(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn floor(x: f64) -> f64 {
    x.floor()
}
extern "C" fn trunc(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn nearbyint(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}
extern "C" fn fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// The address of host symbol `name`, for the run-time loader: the f64 functions above
/// and the C library functions Cranelift may call (`ceilf`, `floor`, `fma`, …).
pub fn resolve(name: &str) -> Option<usize> {
    if let Some((_, f)) = F64_FUNCTIONS.iter().find(|(n, _)| *n == name) {
        return Some(*f as usize);
    }
    let unary32: Option<extern "C" fn(f32) -> f32> = match name {
        "ceilf" => Some(ceilf),
        "floorf" => Some(floorf),
        "truncf" => Some(truncf),
        "nearbyintf" => Some(nearbyintf),
        _ => None,
    };
    if let Some(f) = unary32 {
        return Some(f as usize);
    }
    let unary64: Option<extern "C" fn(f64) -> f64> = match name {
        "ceil" => Some(ceil),
        "floor" => Some(floor),
        "trunc" => Some(trunc),
        "nearbyint" => Some(nearbyint),
        _ => None,
    };
    if let Some(f) = unary64 {
        return Some(f as usize);
    }
    match name {
        "fmaf" => Some(fmaf as extern "C" fn(f32, f32, f32) -> f32 as usize),
        "fma" => Some(fma as extern "C" fn(f64, f64, f64) -> f64 as usize),
        _ => None,
    }
}
