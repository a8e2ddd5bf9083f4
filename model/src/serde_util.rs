//! Small serde helpers shared by the resource types: skip-if predicates so a
//! printed resource carries only what was set, and a number format that
//! prints whole percentages as integers (`50`, not `50.0`), as Istio's YAML does.

use serde::Serializer;

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Serializes an `f64` as an integer when it is whole, so `value: 50`
/// round-trips as `50`.
pub(crate) fn compact_f64<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.is_finite() && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}
