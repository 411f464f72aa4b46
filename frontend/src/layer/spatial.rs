//! neon's spatial arguments of convolution and pooling layers: strides, padding and
//! dilation given as one integer or as a mapping per axis (`{str_h: 2, str_w: 1}`), the
//! pooling window (`2`, `[3, 3]` or `all`), and the sliding window they make.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use xenon_compiler::ir::Window;

/// A stride, padding or dilation: one integer for the height and width axes (the depth
/// axis of a 3-d window keeps its default), or a mapping `{<prefix>_d, <prefix>_h,
/// <prefix>_w}` with `str`, `pad` or `dil` as the prefix, as in neon.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum SpatialArg {
    /// Not given: the default on every axis.
    #[default]
    Default,
    /// One value for the height and width axes.
    Int(usize),
    /// Values per axis, keyed `<prefix>_d`, `<prefix>_h`, `<prefix>_w`.
    Map(BTreeMap<String, usize>),
}

impl SpatialArg {
    /// Whether the argument was not given.
    pub fn is_default(&self) -> bool {
        *self == SpatialArg::Default
    }

    /// The value per spatial axis of a `rank`-d window (1, 2 or 3 axes: `[w]`, `[h, w]`,
    /// `[d, h, w]`), `default` where not given; an unknown key is an error listing the
    /// accepted ones.
    pub fn resolve(&self, prefix: &str, rank: usize, default: usize) -> Result<Vec<usize>, String> {
        let axes: &[&str] = match rank {
            1 => &["w"],
            2 => &["h", "w"],
            _ => &["d", "h", "w"],
        };
        let mut v = vec![default; axes.len()];
        match self {
            SpatialArg::Default => {}
            SpatialArg::Int(n) => {
                // neon: an integer sets the height and width, not the depth.
                let from = axes.len().saturating_sub(2);
                v[from..].iter_mut().for_each(|x| *x = *n);
            }
            SpatialArg::Map(m) => {
                for (k, &n) in m {
                    let axis = k
                        .strip_prefix(prefix)
                        .and_then(|r| r.strip_prefix('_'))
                        .and_then(|a| axes.iter().position(|x| *x == a));
                    match axis {
                        Some(i) => v[i] = n,
                        None => {
                            let accepted: Vec<String> =
                                axes.iter().map(|a| format!("{prefix}_{a}")).collect();
                            return Err(format!(
                                "unknown key {k:?} for a {rank}-d window; accepted: {}",
                                accepted.join(", ")
                            ));
                        }
                    }
                }
            }
        }
        Ok(v)
    }
}

impl Serialize for SpatialArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SpatialArg::Default => s.serialize_none(),
            SpatialArg::Int(n) => s.serialize_u64(*n as u64),
            SpatialArg::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for SpatialArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SpatialArg, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpatialArg;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or a mapping such as {str_h: 2, str_w: 2}")
            }
            fn visit_unit<E: de::Error>(self) -> Result<SpatialArg, E> {
                Ok(SpatialArg::Default)
            }
            fn visit_none<E: de::Error>(self) -> Result<SpatialArg, E> {
                Ok(SpatialArg::Default)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SpatialArg, E> {
                usize::try_from(v)
                    .map(SpatialArg::Int)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SpatialArg, E> {
                if v < 0 {
                    return Err(E::custom(format!("must be at least 0, got {v}")));
                }
                self.visit_u64(v as u64)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<SpatialArg, A::Error> {
                let mut m = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<String, i64>()? {
                    if v < 0 {
                        return Err(de::Error::custom(format!(
                            "{k} must be at least 0, got {v}"
                        )));
                    }
                    m.insert(k, v as usize);
                }
                Ok(SpatialArg::Map(m))
            }
        }
        d.deserialize_any(V)
    }
}

/// A pooling window: one integer for height and width, the extents per axis, or `all`
/// (the whole spatial extent: global pooling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolShape {
    /// `R = S = n`.
    Int(usize),
    /// The extent per spatial axis (`[R, S]` or `[T, R, S]`).
    List(Vec<usize>),
    /// `all`: the input's spatial extent.
    All,
}

impl PoolShape {
    /// The extents for an input of spatial shape `spatial`.
    pub fn resolve(&self, spatial: &[usize]) -> Result<Vec<usize>, String> {
        match self {
            PoolShape::All => Ok(spatial.to_vec()),
            PoolShape::Int(n) => {
                let mut v = vec![1; spatial.len()];
                let from = spatial.len().saturating_sub(2);
                v[from..].iter_mut().for_each(|x| *x = *n);
                Ok(v)
            }
            PoolShape::List(l) if l.len() == spatial.len() => Ok(l.clone()),
            PoolShape::List(l) => Err(format!(
                "fshape {l:?} has {} axes, the input has {} spatial axes ({spatial:?})",
                l.len(),
                spatial.len()
            )),
        }
    }
}

impl Serialize for PoolShape {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PoolShape::Int(n) => s.serialize_u64(*n as u64),
            PoolShape::List(l) => l.serialize(s),
            PoolShape::All => s.serialize_str("all"),
        }
    }
}

impl<'de> Deserialize<'de> for PoolShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PoolShape, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PoolShape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive integer, a list such as [3, 3], or \"all\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PoolShape, E> {
                Ok(PoolShape::Int(v as usize))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PoolShape, E> {
                if v < 0 {
                    return Err(E::custom(format!("must be at least 1, got {v}")));
                }
                Ok(PoolShape::Int(v as usize))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PoolShape, E> {
                match v {
                    "all" => Ok(PoolShape::All),
                    other => Err(E::custom(format!(
                        "{other:?} is not a window; accepted: an integer, a list, \"all\""
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<PoolShape, A::Error> {
                let mut v = Vec::new();
                while let Some(n) = a.next_element::<usize>()? {
                    v.push(n);
                }
                Ok(PoolShape::List(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// The window of a convolution or pooling over an input of spatial shape `spatial`
/// (padding on both sides, neon's symmetric `pad`), with its output extents (neon's
/// `floor((X − S_eff + 2·pad)/stride) + 1`, `S_eff = dil·(S−1) + 1`); an error naming
/// both shapes when an argument is 0 or the window does not fit the padded input.
pub fn window(
    kernel: &[usize],
    stride: &[usize],
    pad: &[usize],
    dilation: &[usize],
    spatial: &[usize],
) -> Result<(Window, Vec<usize>), String> {
    for (what, v) in [
        ("kernel", kernel),
        ("stride", stride),
        ("dilation", dilation),
    ] {
        if v.contains(&0) {
            return Err(format!(
                "{what} {v:?} has a 0; every {what} must be at least 1"
            ));
        }
    }
    let mut out = Vec::with_capacity(spatial.len());
    for i in 0..spatial.len() {
        // Sizes from a model file may be anything: a sum or product past usize is an error.
        let eff = dilation[i]
            .checked_mul(kernel[i] - 1)
            .and_then(|e| e.checked_add(1));
        let padded = pad[i]
            .checked_mul(2)
            .and_then(|p| p.checked_add(spatial[i]));
        let (Some(eff), Some(padded)) = (eff, padded) else {
            return Err(format!(
                "the window {kernel:?} (dilation {dilation:?}) or the padding {pad:?} is too large"
            ));
        };
        if eff > padded {
            return Err(format!(
                "the window {kernel:?} (dilation {dilation:?}) does not fit the input {spatial:?} padded by {pad:?}"
            ));
        }
        out.push((padded - eff) / stride[i] + 1);
    }
    Ok((
        Window {
            kernel: kernel.to_vec(),
            stride: stride.to_vec(),
            pad_low: pad.to_vec(),
            pad_high: pad.to_vec(),
            dilation: dilation.to_vec(),
        },
        out,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spatial_arguments_resolve_per_axis() {
        assert_eq!(SpatialArg::Int(2).resolve("str", 2, 1), Ok(vec![2, 2]));
        assert_eq!(SpatialArg::Int(2).resolve("str", 3, 1), Ok(vec![1, 2, 2]));
        let m = SpatialArg::Map([("pad_h".to_string(), 1)].into());
        assert_eq!(m.resolve("pad", 2, 0), Ok(vec![1, 0]));
        let e = SpatialArg::Map([("str_h".to_string(), 1)].into())
            .resolve("pad", 2, 0)
            .unwrap_err();
        assert!(e.contains("pad_h, pad_w"), "{e}");
    }

    #[test]
    fn windows_follow_neons_output_size_rule() {
        let (_, out) = window(&[5, 5], &[1, 1], &[0, 0], &[1, 1], &[32, 32]).unwrap();
        assert_eq!(out, [28, 28]);
        let (_, out) = window(&[11, 11], &[4, 4], &[3, 3], &[1, 1], &[224, 224]).unwrap();
        assert_eq!(out, [55, 55]);
        let (_, out) = window(&[3, 3], &[2, 2], &[0, 0], &[1, 1], &[55, 55]).unwrap();
        assert_eq!(out, [27, 27]);
        let (_, out) = window(&[3, 3], &[1, 1], &[0, 0], &[2, 2], &[9, 9]).unwrap();
        assert_eq!(out, [5, 5]);
        assert!(window(&[5, 5], &[1, 1], &[0, 0], &[1, 1], &[4, 4]).is_err());
        assert!(window(&[2, 2], &[0, 1], &[0, 0], &[1, 1], &[4, 4]).is_err());
    }
}
