//! Checks of the networking.istio.io kinds. (Skeleton.)

use super::Diagnostic;
use crate::resource::Resource;

pub(super) fn check(_resources: &[Resource], _out: &mut Vec<Diagnostic>) {}
