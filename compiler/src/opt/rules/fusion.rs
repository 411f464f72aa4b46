//! Fusion marking: a matmul whose result is only used by a bias `add` becomes one
//! `fused_dense(a, b, flags, c)` e-node (a GEMM with its bias epilogue). The extractor
//! picks it only when that is cheaper for the whole graph, which it is not when the plain
//! matmul result is needed elsewhere (the fused node would compute the product twice).
//! Converting back to the IR expands it into the plain `matmul` + `add` and records them
//! as a fusion group; the activation that follows is added to the group afterwards (see
//! [`crate::opt`]).

use super::{XRewrite, rw};

/// The fusion rules.
pub fn rules() -> Vec<XRewrite> {
    vec![
        rw(
            "fuse-matmul-bias-r",
            "(add (matmul ?a ?b ?f) ?c)",
            "(fused_dense ?a ?b ?f ?c)",
        ),
        rw(
            "fuse-matmul-bias-l",
            "(add ?c (matmul ?a ?b ?f))",
            "(fused_dense ?a ?b ?f ?c)",
        ),
    ]
}
