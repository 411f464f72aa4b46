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

/// Defines C-ABI functions `$name` (not exported: C programs get these from libm) and
/// `libm(name)`, the address of one of them.
macro_rules! libm {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty = $body:expr;)*) => {
        $(extern "C" fn $name($($a: $t),*) -> $r { $body })*
        fn libm(name: &str) -> Option<usize> {
            match name {
                $(stringify!($name) => Some($name as extern "C" fn($($t),*) -> $r as usize),)*
                _ => None,
            }
        }
    };
}

libm! {
    ceilf(x: f32) -> f32 = x.ceil();
    floorf(x: f32) -> f32 = x.floor();
    truncf(x: f32) -> f32 = x.trunc();
    nearbyintf(x: f32) -> f32 = x.round_ties_even();
    ceil(x: f64) -> f64 = x.ceil();
    floor(x: f64) -> f64 = x.floor();
    trunc(x: f64) -> f64 = x.trunc();
    nearbyint(x: f64) -> f64 = x.round_ties_even();
    fmaf(a: f32, b: f32, c: f32) -> f32 = a.mul_add(b, c);
    fma(a: f64, b: f64, c: f64) -> f64 = a.mul_add(b, c);
}

/// The address of host symbol `name`, for the run-time loader: the f64 functions above
/// and the C library functions Cranelift may call (`ceilf`, `floor`, `fma`, …).
pub fn resolve(name: &str) -> Option<usize> {
    F64_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f as usize)
        .or_else(|| libm(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn resolves_every_host_symbol() {
        for name in ["xenon_exp_f64", "ceilf", "nearbyint", "fma"] {
            assert!(super::resolve(name).is_some(), "{name}");
        }
        assert_eq!(super::resolve("system"), None);
        let f: extern "C" fn(f32) -> f32 =
            unsafe { std::mem::transmute(super::resolve("floorf").unwrap()) };
        assert_eq!(f(2.5), 2.0);
    }
}
