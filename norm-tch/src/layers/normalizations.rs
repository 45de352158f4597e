//! PyTorch's four normalization functions as constructors of [`Normalized`], with a type
//! alias each, the accessors under PyTorch's attribute names, and `tch::nn` integration:
//!
//! | PyTorch | norm-tch | type |
//! | --- | --- | --- |
//! | `nn.utils.weight_norm(m, dim=0)` | [`weight_norm`]`(&vs, m, Some(0))` | [`WeightNorm<L>`] (`Module`) |
//! | `nn.utils.spectral_norm(m, ...)` | [`spectral_norm`]`(&vs, m, options)` | [`SpectralNorm<L>`] (`ModuleT`) |
//! | `nn.utils.parametrizations.weight_norm(m, dim=0)` | [`parametrizations::weight_norm`] | [`ParametrizedWeightNorm<L>`] (`Module`) |
//! | `nn.utils.parametrizations.spectral_norm(m, ...)` | [`parametrizations::spectral_norm`] | [`ParametrizedSpectralNorm<L>`] (`ModuleT`) |
//! | none (norm's operator norm, opt-in) | [`operator_norm`]`(&vs, m, options)` | [`OperatorNormalized<L>`] (`ModuleT`) |
//!
//! Weight norm computes the same weight in both modes, so its layers are `tch::nn::Module`s
//! (and so `ModuleT`s, through tch's blanket impl); spectral norm iterates in training mode
//! only, so its layers are `ModuleT`s. `forward`/`forward_t` panic on a libtorch error, as
//! tch's own layers do; `f_forward`/`f_forward_t` return a `Result`.

use super::normalized::Normalized;
use super::reparam::{
    OperatorNormLayerOptions, OperatorNormReparam, OperatorNormSetup, SpectralNormHook, SpectralNormOptions,
    SpectralNormParametrization, WeightNormHook, WeightNormParametrization,
};
use super::WeightedLayer;
use crate::operator_norm::AsOperator;
use crate::scheme::Suffix;
use norm_core::weight_norm::WeightNormDim;
use norm_core::Result;
use tch::nn::VarStore;
use tch::Tensor;

/// `torch.nn.utils.weight_norm` on a layer: entries `weight_g`, `weight_v`.
pub type WeightNorm<L> = Normalized<L, WeightNormHook>;
/// `torch.nn.utils.spectral_norm` on a layer: `weight_orig`, buffers `weight_u`, `weight_v`.
pub type SpectralNorm<L> = Normalized<L, SpectralNormHook>;
/// `torch.nn.utils.parametrizations.weight_norm` on a layer: `parametrizations.weight.original0` (g), `.original1` (v).
pub type ParametrizedWeightNorm<L> = Normalized<L, WeightNormParametrization>;
/// `torch.nn.utils.parametrizations.spectral_norm` on a layer: `parametrizations.weight.original`,
/// buffers `parametrizations.weight.0._u`, `._v`.
pub type ParametrizedSpectralNorm<L> = Normalized<L, SpectralNormParametrization>;
/// norm's operator-norm normalization of a convolution ([`operator_norm`]): `weight_orig`,
/// buffers `weight_op_u`, `weight_op_v`.
pub type OperatorNormalized<L> = Normalized<L, OperatorNormReparam>;

/// `torch.nn.utils.weight_norm(layer, name="weight", dim=dim)` for a layer built in `vs`:
/// `weight = g * v / ‖v‖` with `g = norm_except_dim(weight, 2, dim)` and `v = weight` (new
/// parameters `weight_g`, `weight_v`; `weight` is removed). `dim = None` is stored as -1 and
/// means the whole tensor ([`norm_core::weight_norm`]).
///
/// ```
/// use norm_tch::layers::{linear, weight_norm, LinearConfig};
/// use tch::nn::{Module, VarStore};
/// # fn main() -> norm_tch::Result<()> {
/// let vs = VarStore::new(tch::Device::Cpu);
/// let fc = linear(&(vs.root() / "enc" / "fc"), 4, 2, LinearConfig::default())?;
/// let fc = weight_norm(&vs, fc, Some(0))?; // enc.fc.weight_g [2, 1], enc.fc.weight_v [2, 4]
/// assert_eq!(fc.weight_g().size(), [2, 1]);
/// let ys = fc.forward(&tch::Tensor::ones([3, 4], (tch::Kind::Float, tch::Device::Cpu)));
/// assert_eq!(ys.size(), [3, 2]);
/// let fc = fc.remove(false)?; // remove_weight_norm: a plain `enc.fc.weight` again
/// assert!(vs.variables().contains_key("enc.fc.weight"));
/// # drop(fc); Ok(()) }
/// ```
pub fn weight_norm<L: WeightedLayer>(vs: &VarStore, layer: L, dim: Option<i64>) -> Result<WeightNorm<L>> {
    Normalized::new(vs, layer, dim)
}

/// `torch.nn.utils.spectral_norm(layer, "weight", n_power_iterations, eps, dim)` for a
/// layer built in `vs`: `weight` becomes `weight_orig` (the same tensor) and the buffers
/// `weight_u`, `weight_v` are drawn from the global generator, u first; no iteration yet.
///
/// Errors (checked in PyTorch's order, nothing changed on error): `n_power_iterations <= 0`;
/// a second spectral norm on the same weight; a negative dim (PyTorch's permute rejects it)
/// or one past the weight's rank.
///
/// ```
/// use norm_tch::layers::{conv2d, spectral_norm, ConvOptions, SpectralNormOptions};
/// use tch::nn::{ModuleT, VarStore};
/// # fn main() -> norm_tch::Result<()> {
/// let vs = VarStore::new(tch::Device::Cpu);
/// let conv = conv2d(&(vs.root() / "disc" / "0"), 3, 8, [3, 3], ConvOptions::default())?;
/// let conv = spectral_norm(&vs, conv, SpectralNormOptions::default())?;
/// let xs = tch::Tensor::ones([1, 3, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
/// let ys = conv.forward_t(&xs, true); // one power iteration, then the convolution
/// assert_eq!(ys.size(), [1, 8, 6, 6]);
/// assert_eq!(conv.weight_u().size(), [8]);
/// # Ok(()) }
/// ```
pub fn spectral_norm<L: WeightedLayer>(
    vs: &VarStore,
    layer: L,
    options: SpectralNormOptions,
) -> Result<SpectralNorm<L>> {
    Normalized::new(vs, layer, options)
}

/// norm's operator-norm normalization (opt-in; no PyTorch function) for a layer built in `vs`:
/// `weight = weight_orig / σ`, where σ estimates the operator norm `σ_op = max_{‖x‖=1} ‖A x‖₂`
/// of the layer's convolution `A` (its stride, padding, dilation, groups, circular padding) on
/// inputs of spatial size `options.input_size`, by power iteration on `A` and its exact
/// adjoint: `σ = ⟨u, A(weight_orig) v⟩` (differentiable), after `n_power_iterations` steps
/// `v = normalize(Aᵀ u)`, `u = normalize(A v)` per training forward. `weight` becomes
/// `weight_orig` (the same tensor); the buffers `weight_op_u` (`[1, C_out, *S_out]`) and
/// `weight_op_v` (`[1, C_in, *S_in]`) come from a float64 power iteration from
/// `options.registration.seed` to its tolerance, so eval is meaningful at once. See
/// [`super::reparam::OperatorNormReparam`] and `docs/operator_norm.md`.
///
/// Unlike [`spectral_norm`], whose σ is the reshaped kernel's (a lower bound of `σ_op`), the
/// normalized layer's operator norm on that input size is 1 up to σ's error
/// ([`OperatorNormalized::sigma`]'s bound). On inputs of another size the operator norm may
/// differ (for zero padding, it grows toward the infinite-input norm with the size).
///
/// Errors ([`norm_core::Error`], nothing registered): those of
/// [`OperatorNormSetup::for_layer`] (`input_size`, `n_power_iterations`, `eps`, `tolerance`,
/// `max_iterations`, reflect/replicate padding), then [`Normalized::new`]'s.
///
/// ```
/// use norm_tch::layers::{conv2d, operator_norm, ConvOptions, OperatorNormLayerOptions};
/// use tch::nn::{ModuleT, VarStore};
/// # fn main() -> norm_tch::Result<()> {
/// let vs = VarStore::new(tch::Device::Cpu);
/// let conv = conv2d(&(vs.root() / "disc" / "0"), 3, 8, [3, 3], ConvOptions { padding: [1, 1], ..Default::default() })?;
/// let conv = operator_norm(&vs, conv, OperatorNormLayerOptions::new([16, 16]).with_seed(7))?;
/// assert_eq!(conv.weight_op_v().size(), [1, 3, 16, 16]); // v: one input
/// assert_eq!(conv.weight_op_u().size(), [1, 8, 16, 16]); // u: one output
/// let xs = tch::Tensor::ones([2, 3, 16, 16], (tch::Kind::Float, tch::Device::Cpu));
/// let ys = conv.forward_t(&xs, true); // one A/Aᵀ step, then the convolution with weight_orig / σ
/// assert_eq!(ys.size(), [2, 8, 16, 16]);
/// let est = conv.sigma()?.expect("a forward ran");
/// assert!(est.bound <= 1e-4 * est.sigma);
/// # Ok(()) }
/// ```
pub fn operator_norm<L: AsOperator>(
    vs: &VarStore,
    layer: L,
    options: OperatorNormLayerOptions,
) -> Result<OperatorNormalized<L>> {
    let setup = OperatorNormSetup::for_layer(&layer, options)?;
    Normalized::new(vs, layer, setup)
}

/// `torch.nn.utils.parametrizations`: the parametrization API's weight norm and spectral
/// norm.
pub mod parametrizations {
    use super::*;

    /// `parametrizations.weight_norm(layer, "weight", dim)` for a layer built in `vs`:
    /// `original0 = norm_except_dim(weight, 2, dim)`, `original1 = weight` (new parameters;
    /// `weight` is removed). `dim = None` is stored as -1: the whole tensor.
    pub fn weight_norm<L: WeightedLayer>(
        vs: &VarStore,
        layer: L,
        dim: Option<i64>,
    ) -> Result<ParametrizedWeightNorm<L>> {
        Normalized::new(vs, layer, dim)
    }

    /// `parametrizations.spectral_norm(layer, "weight", n_power_iterations, eps, dim)` for a
    /// layer built in `vs`, registered on a module in training mode (PyTorch's default for a
    /// new module; [`Normalized::new_in_mode`] takes the mode): draws u, v, runs 15 +
    /// `n_power_iterations` power iterations.
    ///
    /// Errors: the weight already parametrized; then, in PyTorch's order, a dim outside
    /// `[-ndim, ndim)` and `n_power_iterations <= 0`.
    pub fn spectral_norm<L: WeightedLayer>(
        vs: &VarStore,
        layer: L,
        options: SpectralNormOptions,
    ) -> Result<ParametrizedSpectralNorm<L>> {
        Normalized::new(vs, layer, options)
    }
}

fn entry<L: WeightedLayer, R: super::reparam::Reparametrization>(n: &Normalized<L, R>, suffix: Suffix) -> &Tensor {
    n.entry(suffix).expect("every layer of this type has this entry")
}

impl<L: WeightedLayer> WeightNorm<L> {
    /// `weight_g` (PyTorch's `module.weight_g`). While folded: the g kept out of the store.
    pub fn weight_g(&self) -> &Tensor {
        entry(self, Suffix::WeightG)
    }

    /// `weight_v`. While folded: the same tensor, which is then the plain `<prefix>.weight`.
    pub fn weight_v(&self) -> &Tensor {
        entry(self, Suffix::WeightV)
    }

    /// The stored dim (`-1` for `None`).
    pub fn dim(&self) -> WeightNormDim {
        self.reparametrization().dim()
    }

    /// [`Normalized::weight_t`]'s bits written into `out`, a contiguous CPU tensor of the
    /// weight's shape that the caller reuses (no allocation; no autograd graph: call it
    /// under `tch::no_grad`). Dims 0 and `rank - 1` only; see [`fn@crate::weight_norm_out`].
    /// While folded: a copy of the plain weight.
    pub fn weight_out(&self, out: &mut Tensor) -> Result<()> {
        if self.is_folded() {
            let v = self.weight_v();
            if out.size() != v.size() {
                return Err(norm_core::Error::ShapeMismatch {
                    what: "weight_out's out".into(),
                    expected: v.size().iter().map(|&d| d as usize).collect(),
                    got: out.size().iter().map(|&d| d as usize).collect(),
                });
            }
            return tch::no_grad(|| out.f_copy_(v)).map_err(crate::backend::tch_err("copy_"));
        }
        crate::weight_norm_out(self.weight_v(), self.weight_g(), self.dim(), out)
    }
}

impl<L: WeightedLayer> SpectralNorm<L> {
    /// `weight_orig`. While folded: the same tensor, which is then the plain `<prefix>.weight`.
    pub fn weight_orig(&self) -> &Tensor {
        entry(self, Suffix::WeightOrig)
    }

    /// The `weight_u` buffer (while folded: kept out of the store, unchanged).
    pub fn weight_u(&self) -> &Tensor {
        entry(self, Suffix::WeightU)
    }

    /// The `weight_v` buffer (while folded: kept out of the store, unchanged).
    pub fn weight_v(&self) -> &Tensor {
        entry(self, Suffix::WeightV)
    }

    /// The normalized dim.
    pub fn dim(&self) -> usize {
        self.reparametrization().settings().dim
    }
}

impl<L: WeightedLayer> ParametrizedWeightNorm<L> {
    /// `parametrizations.weight.original0` (g).
    pub fn original0(&self) -> &Tensor {
        entry(self, Suffix::Original0)
    }

    /// `parametrizations.weight.original1` (v). While folded: the plain `<prefix>.weight`.
    pub fn original1(&self) -> &Tensor {
        entry(self, Suffix::Original1)
    }
}

impl<L: WeightedLayer> ParametrizedSpectralNorm<L> {
    /// `parametrizations.weight.original`. While folded: the plain `<prefix>.weight`.
    pub fn original(&self) -> &Tensor {
        entry(self, Suffix::Original)
    }

    /// The buffers `parametrizations.weight.0._u` and `._v`; `None` for a 1-D weight (no
    /// power iteration).
    pub fn u_v(&self) -> Option<(&Tensor, &Tensor)> {
        self.entry(Suffix::ParamU).zip(self.entry(Suffix::ParamV))
    }
}

macro_rules! module_impls {
    (Module: $($alias:ident),*; ModuleT: $($alias_t:ident),*) => {
        $(
            impl<L: WeightedLayer> $alias<L> {
                /// The forward pass (the mode does not matter; eval-mode caching applies).
                pub fn f_forward(&self, xs: &Tensor) -> Result<Tensor> {
                    self.f_forward_t(xs, false)
                }
            }

            impl<L: WeightedLayer + std::fmt::Debug + Send> tch::nn::Module for $alias<L> {
                /// Panics on a libtorch error (as tch's own layers do); use `f_forward` to get a `Result`.
                fn forward(&self, xs: &Tensor) -> Tensor {
                    self.f_forward(xs).unwrap_or_else(|e| panic!("{} forward failed: {e}", stringify!($alias)))
                }
            }
        )*
        $(
            impl<L: WeightedLayer + std::fmt::Debug + Send> tch::nn::ModuleT for $alias_t<L> {
                /// Panics on a libtorch error (as tch's own layers do); use `f_forward_t` to get a `Result`.
                fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
                    self.f_forward_t(xs, train).unwrap_or_else(|e| panic!("{} forward failed: {e}", stringify!($alias_t)))
                }
            }
        )*
    };
}

module_impls!(Module: WeightNorm, ParametrizedWeightNorm; ModuleT: SpectralNorm, ParametrizedSpectralNorm, OperatorNormalized);
