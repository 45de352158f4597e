//! Opt-in guards against the NaN weights of a degenerate normalization (issue 11, item 1):
//! checked mode and its value checks. PyTorch has none: `torch._weight_norm` of a zero `v`
//! and `weight / σ` with `σ = 0` return NaN silently.
//!
//! - weight norm, `eps`: `w = g · v / max(‖v‖, eps)` ([`crate::weight_norm::WeightNormGuards`]);
//! - spectral norm, `sigma_floor`: `w = weight_orig / max(σ, sigma_floor)`
//!   ([`crate::spectral_norm::SpectralNormGuards`]);
//! - `checked`: before the division, the weight, `‖v‖` (or σ) and, for weight norm, `g` are
//!   read (as float64, exactly, under no_grad); a value that is not finite, or a divisor that is zero,
//!   is an [`Error::NonFinite`] naming the layer and the value. The checks only read: when they
//!   pass the result is the same tensor, bit for bit, as without them.
//!
//! Both options are off by default, and off they add no op: the default path is PyTorch's.

use crate::backend::Backend;
use crate::error::{Error, Result};

/// What a checked quantity must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Every value finite (a weight, `g`).
    Finite,
    /// Every value finite and non-zero (a divisor: `‖v‖`, σ).
    FiniteNonZero,
}

impl Requirement {
    fn expected(self) -> &'static str {
        match self {
            Requirement::Finite => "finite",
            Requirement::FiniteNonZero => "finite and non-zero",
        }
    }

    fn accepts(self, x: f64) -> bool {
        x.is_finite() && (self == Requirement::Finite || x != 0.0)
    }
}

/// Checks every value of `t` against `requirement`; the first that fails is an
/// [`Error::NonFinite`] naming `layer` and `quantity`. Reads `t` (as float64, exactly) and changes nothing.
pub fn check<B: Backend>(t: &B::Tensor, layer: &str, quantity: &'static str, requirement: Requirement) -> Result<()> {
    let values = B::to_f64_vec(t)?;
    match values.iter().find(|&&x| !requirement.accepts(x)) {
        Some(&x) => {
            Err(Error::NonFinite { layer: layer.to_string(), quantity, value: x, expected: requirement.expected() })
        }
        None => Ok(()),
    }
}

/// A normalization's set of guards ([`crate::weight_norm::WeightNormGuards`],
/// [`crate::spectral_norm::SpectralNormGuards`]): what a layer needs to accept one.
pub trait Guards: Clone + Copy + std::fmt::Debug + Default + PartialEq + Send + Sync {
    /// Checks the settings (a positive finite eps or floor).
    fn validate(&self) -> Result<()>;
}

/// Checks an optional bound (`eps`, `sigma_floor`): positive and finite.
pub fn check_floor(name: &'static str, floor: Option<f64>) -> Result<()> {
    match floor {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(Error::invalid(name, x, "a positive finite number (or None)")),
        _ => Ok(()),
    }
}
