//! # xenon-compiler
//!
//! Xenon's compiler: the tensor [`ir`] (primitive ops on a petgraph graph with static shapes
//! and dtypes), the reference interpreter [`interp`] that defines what every op means, and
//! symbolic reverse-mode [`autodiff`], which adds gradient nodes to the same graph; the
//! [`opt`]imizer, [`lower`]ing to runtime programs, [`codegen`], the [`backend`]s and their
//! registry, and [`verify`] mode (a compiled run checked against the interpreter).
//!
//! ```
//! use xenon_compiler::ir::{DType, Graph};
//! use xenon_compiler::interp;
//! use xenon_runtime::Tensor;
//!
//! let mut g = Graph::new();
//! let x = g.input("x", DType::F64, &[3]).unwrap();
//! let y = g.mul(x, x).unwrap();
//! let s = g.sum(y, &[0], false).unwrap();
//! g.set_output("s", s).unwrap();
//!
//! let feeds = [("x".to_string(), Tensor::from_f64(vec![3], vec![1.0, 2.0, 3.0]).unwrap())];
//! let out = interp::run(&g, &feeds.into_iter().collect()).unwrap();
//! assert_eq!(out["s"].to_f64_vec(), vec![14.0]);
//! ```

pub mod aot;
pub mod autodiff;
pub mod backend;
pub mod codegen;
pub mod interp;
pub mod ir;
pub mod lower;
pub mod opt;
pub mod pipeline;
pub mod verify;
