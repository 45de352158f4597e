//! The reparametrizations a [`Normalized`](super::Normalized) layer carries, one small type
//! each, holding only what differs between them:
//!
//! | type | PyTorch | scheme ([`crate::scheme`]) |
//! | --- | --- | --- |
//! | [`WeightNormHook`] | `torch.nn.utils.weight_norm` | `weight_g`, `weight_v` |
//! | [`SpectralNormHook`] | `torch.nn.utils.spectral_norm` | `weight_orig`; buffers `weight_u`, `weight_v` |
//! | [`WeightNormParametrization`] | `torch.nn.utils.parametrizations.weight_norm` | `parametrizations.weight.original0`, `.original1` |
//! | [`SpectralNormParametrization`] | `torch.nn.utils.parametrizations.spectral_norm` | `parametrizations.weight.original`; buffers `.0._u`, `.0._v` |
//! | [`OperatorNormReparam`] | none (norm's operator norm of a convolution, opt-in) | `weight_orig`; buffers `weight_op_u`, `weight_op_v` |
//!
//! A reparametrization says how registration computes its entries from the layer's weight
//! ([`Reparametrization::register`]), how the effective weight is computed from them
//! ([`Reparametrization::weight_t`]), and a few facts about PyTorch's `remove_*`. Everything
//! else — finding the layer's place in the store, registering the entries all or nothing,
//! the eval-mode cache, fold, unfold and remove — is written once in
//! [`Normalized`](super::Normalized). A new reparametrization is one file here, a
//! [`crate::scheme::Scheme`] row, and a type alias with a constructor in
//! [`super`].
//!
//! Every entry is either the *plain* tensor (the weight itself: weight norm's v, spectral
//! norm's `weight_orig`; [`Scheme::plain`]) or one of the *others* (g, the power-iteration
//! vectors u and v), in the order [`Reparametrization::register`] returns them.

mod iteration_count;
mod operator_norm;
mod seeded_draw;
mod spectral_norm_hook;
mod spectral_norm_parametrization;
mod weight_norm_hook;
mod weight_norm_parametrization;

pub use iteration_count::IterationCount;
pub(crate) use operator_norm::residual_bound as operator_residual_bound;
pub use operator_norm::{OperatorNormLayerOptions, OperatorNormReparam, OperatorNormSetup};
pub use spectral_norm_hook::{SpectralNormHook, SpectralNormOptions, SpectralNormSettings};
pub use spectral_norm_parametrization::SpectralNormParametrization;
pub use weight_norm_hook::WeightNormHook;
pub use weight_norm_parametrization::WeightNormParametrization;

use crate::scheme::{Scheme, Suffix};
use norm_core::Result;
use tch::Tensor;

/// What registration knows besides the weight and the options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterContext {
    /// The layer's default spectral-norm dim ([`super::WeightedLayer::default_spectral_norm_dim`]).
    pub default_spectral_norm_dim: i64,
    /// The module's training flag at registration (`register_parametrization` evaluates the
    /// weight once in that mode).
    pub training: bool,
}

/// An entry a registration adds besides the plain tensor, with its initial value.
#[derive(Debug)]
pub struct NewEntry {
    /// Its name under the module.
    pub suffix: Suffix,
    /// Its initial value (registered as a detached copy).
    pub value: Tensor,
    /// A parameter (`true`, like g) or a buffer (`false`, like u and v).
    pub trainable: bool,
}

/// A layer's entries: the plain tensor and the others, handles on the store's variables.
#[derive(Debug)]
pub struct Entries {
    /// The weight itself (v, `weight_orig`, `original1`, `original`).
    pub plain: Tensor,
    /// The others, in registration order.
    pub others: Vec<Tensor>,
}

impl Entries {
    /// The other entry at `index`; an error (not a panic) for entries of another layout.
    pub fn other(&self, index: usize) -> Result<&Tensor> {
        self.others.get(index).ok_or_else(|| {
            norm_core::Error::invalid(
                "entries",
                format!("{} other entries", self.others.len()),
                format!("at least {}", index + 1),
            )
        })
    }
}

/// What PyTorch's `remove_*` does with the weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoveRule {
    /// Whether the weight is evaluated in the module's mode (`remove_parametrizations`
    /// evaluates `module.weight` once more, which iterates in training mode) rather than
    /// without iterating (`remove_weight_norm`, `remove_spectral_norm`).
    pub evaluates_in_mode: bool,
    /// Whether the plain tensor itself becomes `weight` (spectral norm's parametrization
    /// `set_`s `original`) rather than a new parameter.
    pub keeps_plain: bool,
}

/// A reparametrization of a layer's `weight` (see the [module docs](self)).
pub trait Reparametrization: std::fmt::Debug + Send + Sync + Sized {
    /// What registration takes besides the layer: weight norm's dim, [`SpectralNormOptions`].
    type Options;
    /// PyTorch's state-dict names.
    const SCHEME: Scheme;
    /// PyTorch's function name, for errors (`weight_norm`, `spectral_norm`).
    const NORM: &'static str;
    /// Entries whose presence means the weight already carries this reparametrization
    /// (PyTorch raises `RuntimeError`).
    const REGISTERED_MARKERS: &'static [Suffix];
    /// Whether registration renames the layer's `weight` to the plain entry (spectral norm)
    /// rather than registering a copy of it (weight norm's v is a new parameter).
    const PLAIN_IS_LAYER_WEIGHT: bool;
    /// What `remove` does.
    const REMOVE: RemoveRule;
    /// Whether the weight's final division may write into the storage of the layer's
    /// previous weight ([`crate::weight_recycling`]); spectral norm's `weight_orig / σ` does.
    const RECYCLES_WEIGHT: bool = false;

    /// Checks PyTorch makes before it looks at the module; none by default.
    fn check_options(_options: &Self::Options) -> Result<()> {
        Ok(())
    }

    /// PyTorch's registration on `weight` (the layer's, not yet changed): validates the
    /// options against it and computes the other entries (drawing and iterating as PyTorch
    /// does). Changes nothing in the store.
    fn register(weight: &Tensor, options: Self::Options, context: RegisterContext) -> Result<(Self, Vec<NewEntry>)>;

    /// The opt-in guards ([`norm_core::guards`]): weight norm's
    /// [`WeightNormGuards`](norm_core::weight_norm::WeightNormGuards), spectral norm's
    /// [`SpectralNormGuards`](norm_core::spectral_norm::SpectralNormGuards). The default is
    /// PyTorch's behaviour.
    type Guards: norm_core::guards::Guards;

    /// The effective weight from the entries under `guards` (`layer` names the layer in
    /// their errors), and the σ tensor spectral norm divided by (`None` for weight norm and
    /// a 1-D parametrized spectral norm); in training mode (`train`) spectral norm iterates
    /// first, updating its vectors in place. With the default guards: PyTorch's ops and bits.
    fn weight_and_sigma(
        &self,
        entries: &Entries,
        train: bool,
        guards: &Self::Guards,
        layer: &str,
    ) -> Result<(Tensor, Option<Tensor>)>;

    /// The effective weight from the entries, without guards (PyTorch's computation); in
    /// training mode (`train`) spectral norm iterates first, updating its vectors in place.
    fn weight_t(&self, entries: &Entries, train: bool) -> Result<Tensor> {
        self.weight_and_sigma(entries, train, &Self::Guards::default(), "").map(|(weight, _)| weight)
    }

    /// `Some(dim)` when, with the default guards, the weight is exactly
    /// `torch._weight_norm(plain, others[0], dim)` recomputed on every forward (the hook
    /// API's weight norm), so a layer may fuse it with its forward
    /// ([`super::WeightedLayer::forward_weight_normed`]); `None` (the default) otherwise.
    fn fused_weight_norm_dim(&self) -> Option<i64> {
        None
    }

    /// After unfold made the plain tensor the weight again: brings the others in line with
    /// it, in place (weight norm sets `g = ‖w‖`). Nothing by default.
    fn unfold_others(&self, _entries: &Entries) -> Result<()> {
        Ok(())
    }
}
