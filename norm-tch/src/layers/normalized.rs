//! [`Normalized`]: one layer type for every reparametrization of a layer's `weight` — weight
//! norm and spectral norm, hook and parametrization APIs ([`super::reparam`]).
//!
//! It owns the layer, the layer's place in the VarStore (found from the layer's own weight,
//! so a place is named once, where the layer is built), the entries under PyTorch's
//! state-dict names, the fold state and the eval-mode weight cache; registration, the
//! effective weight, the forward, fold, unfold and remove ([`super::fold`]) are written here
//! once for all four.
//!
//! Registration mirrors PyTorch's (`WeightNorm.apply`, `SpectralNorm.apply`,
//! `register_parametrization`): the layer's `weight` leaves the module, renamed to the plain
//! entry (spectral norm) or replaced by a copy (weight norm's v), and the other entries are
//! registered with the values PyTorch computes, drawing from the global generator as PyTorch
//! does. Every check runs, and every copy the store will hold is made, before the first
//! change: on error nothing is registered or removed.

use super::cache::{CacheStats, WeightCache};
use super::reparam::{Entries, RegisterContext, Reparametrization};
use super::WeightedLayer;
use crate::scheme::Suffix;
use crate::var_store::{detached_copy, ModulePath, Store};
use crate::weight_recycling::WeightSlot;
use norm_core::{Error, Result};
use tch::nn::VarStore;
use tch::Tensor;

/// A layer whose `weight` is reparametrized by `R` (see [`super::normalizations`] for the
/// four PyTorch functions, [`super::reparam`] for the reparametrizations).
///
/// Folded ([`Normalized::fold`]), the layer is the plain layer with `<prefix>.weight`, which
/// is the tensor of the plain entry (v, `weight_orig`, `original1`, `original`); the other
/// entries are kept out of the store until [`Normalized::unfold`].
///
/// ```
/// use norm_tch::layers::{parametrizations, spectral_norm, Foldable, ParametrizedWeightNorm, SpectralNormOptions};
/// use tch::nn::{ModuleT, VarStore};
/// # fn main() -> norm_tch::Result<()> {
/// let vs = VarStore::new(tch::Device::Cpu);
/// // tch's own layer works too: the place is found from its weight.
/// let fc = tch::nn::linear(vs.root() / "head", 8, 4, Default::default());
/// let mut fc: ParametrizedWeightNorm<_> = parametrizations::weight_norm(&vs, fc, None)?;
/// assert!(vs.variables().contains_key("head.parametrizations.weight.original0"));
/// let xs = tch::Tensor::ones([2, 8], (tch::Kind::Float, tch::Device::Cpu));
/// let before = fc.forward_t(&xs, false);
/// fc.fold()?; // a plain `head.weight` (the tensor of `original1`), same output
/// assert!(vs.variables().contains_key("head.weight"));
/// assert!(fc.forward_t(&xs, false).allclose(&before, 1e-6, 1e-6, false));
/// fc.unfold()?;
/// # let conv = norm_tch::layers::conv1d(&(vs.root() / "c"), 2, 3, [3], Default::default())?;
/// # let _ = spectral_norm(&vs, conv, SpectralNormOptions::default())?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Normalized<L: WeightedLayer, R: Reparametrization> {
    pub(super) layer: L,
    pub(super) store: Store,
    pub(super) module: ModulePath,
    pub(super) reparam: R,
    pub(super) entries: Entries,
    /// The others' names and whether each is a parameter, in `entries.others` order.
    pub(super) others: Vec<(Suffix, bool)>,
    /// Whether folded.
    pub(super) folded: bool,
    /// While folded: the optimizer group of each of the others (`None`: a buffer).
    pub(super) groups: Vec<Option<usize>>,
    pub(super) cache: WeightCache,
    /// The opt-in guards ([`Normalized::set_guards`]); default: PyTorch's behaviour.
    pub(super) guards: R::Guards,
    /// The σ tensor of the last weight computation, detached (spectral norm; [`super::sigma`]).
    pub(super) last_sigma: std::sync::Mutex<Option<Tensor>>,
    /// Whether the weight is divided into the previous weight's storage when free
    /// ([`crate::weight_recycling`]; `R::RECYCLES_WEIGHT` until [`Normalized::set_weight_recycling`]).
    pub(super) recycling: bool,
    /// The handle on the previous weight's storage ([`crate::weight_recycling`]).
    pub(super) weight_slot: WeightSlot,
}

/// The name `layer`'s weight is registered under in `store`, and its module
/// ([`ModulePath::of_variable`]).
fn locate_weight<L: WeightedLayer>(store: &Store, layer: &L) -> Result<(String, ModulePath)> {
    let name = store.name_of(layer.weight())?.ok_or_else(|| {
        Error::invalid(
            "layer",
            "a layer whose weight is not a variable of this VarStore",
            "a layer built in the VarStore given (its `weight` registered there)",
        )
    })?;
    let module = ModulePath::of_variable(&name);
    Ok((name, module))
}

/// PyTorch's `RuntimeError` for a second registration on the same weight.
fn check_not_registered<R: Reparametrization>(store: &Store, module: &ModulePath) -> Result<()> {
    if R::REGISTERED_MARKERS.iter().any(|s| store.contains(&module.full_name(s.as_str()))) {
        return Err(Error::AlreadyRegistered { norm: R::NORM, name: module.full_name("weight") });
    }
    Ok(())
}

fn check_free(store: &Store, names: &[String]) -> Result<()> {
    match names.iter().find(|n| store.contains(n)) {
        Some(name) => Err(Error::invalid("name", name, "a parameter name not yet registered in the VarStore")),
        None => Ok(()),
    }
}

/// What registration computed, every check passed, before the store changes.
struct Prepared<R> {
    store: Store,
    module: ModulePath,
    weight_name: String,
    weight: Tensor,
    reparam: R,
    others: Vec<(Suffix, bool)>,
    /// Detached copies of the others' initial values, in registration order.
    copies: Vec<Tensor>,
}

/// Registration up to the first change: options, the layer's place, names, then PyTorch's
/// computation of the entries (which may draw from the global generator), then the copies
/// the store will hold. Nothing is changed here.
fn prepare<L: WeightedLayer, R: Reparametrization>(
    vs: &VarStore,
    layer: &L,
    options: R::Options,
    training: bool,
) -> Result<Prepared<R>> {
    R::check_options(&options)?;
    let store = Store::of(vs);
    let (weight_name, module) = locate_weight(&store, layer)?;
    check_not_registered::<R>(&store, &module)?;
    if weight_name != module.full_name("weight") {
        return Err(Error::invalid(
            "layer",
            format!("a layer whose weight is registered as `{weight_name}`"),
            "a weight registered under the name `weight`, as PyTorch's layers name it",
        ));
    }
    let names: Vec<String> = R::SCHEME.suffixes().iter().map(|s| module.full_name(s.as_str())).collect();
    check_free(&store, &names)?;
    let weight = layer.weight().shallow_clone();
    let context = RegisterContext { default_spectral_norm_dim: layer.default_spectral_norm_dim(), training };
    let (reparam, new_entries) = R::register(&weight, options, context)?;
    let copies = new_entries.iter().map(|e| detached_copy(&e.value)).collect::<Result<Vec<_>>>()?;
    let others = new_entries.iter().map(|e| (e.suffix, e.trainable)).collect();
    Ok(Prepared { store, module, weight_name, weight, reparam, others, copies })
}

impl<L: WeightedLayer, R: Reparametrization> Normalized<L, R> {
    /// Registers `R` on `layer`'s weight in `vs` (the VarStore the layer was built in), on a
    /// module in training mode (PyTorch's default for a new module).
    ///
    /// Errors (nothing registered or removed; nothing drawn unless the error comes from
    /// the registration's own checks, as in PyTorch): options PyTorch rejects up front; the
    /// layer's weight not a variable of `vs`, or registered under a name other than
    /// `weight`; the weight already carrying this reparametrization (PyTorch checks this
    /// first; norm first has to find the layer's place from its weight); a name the
    /// registration needs taken; then the reparametrization's own checks (dims, ...).
    pub fn new(vs: &VarStore, layer: L, options: R::Options) -> Result<Self> {
        Self::new_in_mode(vs, layer, options, true)
    }

    /// As [`Normalized::new`], on a module whose training flag is `training` at
    /// registration (the parametrization API's spectral norm evaluates the weight once then,
    /// iterating in training mode; the others ignore it).
    pub fn new_in_mode(vs: &VarStore, layer: L, options: R::Options, training: bool) -> Result<Self> {
        let p = prepare::<L, R>(vs, &layer, options, training)?;
        let plain_name = p.module.full_name(R::SCHEME.plain().as_str());
        let plain_copy = if R::PLAIN_IS_LAYER_WEIGHT { None } else { Some(detached_copy(&p.weight)?) };

        // Every check passed and every copy exists: change the store. New parameters go to
        // optimizer group 0 (as `vs.root()` registers them), weight norm's g before v
        // (PyTorch's registration order).
        let plain = match plain_copy {
            None => p.store.rename(&p.weight_name, &plain_name)?,
            Some(copy) => {
                drop(p.store.take(&p.weight_name)?);
                copy
            }
        };
        for ((suffix, trainable), copy) in p.others.iter().zip(&p.copies) {
            p.store.put(&p.module.full_name(suffix.as_str()), copy, trainable.then_some(0))?;
        }
        if !R::PLAIN_IS_LAYER_WEIGHT {
            p.store.put(&plain_name, &plain, Some(0))?;
        }
        Ok(Normalized {
            layer,
            store: p.store,
            module: p.module,
            reparam: p.reparam,
            entries: Entries { plain, others: p.copies },
            others: p.others,
            folded: false,
            groups: Vec::new(),
            cache: WeightCache::default(),
            guards: R::Guards::default(),
            last_sigma: Default::default(),
            recycling: R::RECYCLES_WEIGHT,
            weight_slot: WeightSlot::default(),
        })
    }

    /// A folded `R` around the plain layer (its `weight` stays as it is, and becomes the
    /// plain entry at [`Normalized::unfold`]: the same tensor, so an optimizer holding it
    /// keeps working, unlike [`Normalized::new`], which copies v as PyTorch does). The
    /// others are computed as registration computes them (drawing as it does) and kept out
    /// of the store until unfold, which for weight norm recomputes `g = ‖w‖` anyway;
    /// parameters among them go to optimizer group 0.
    ///
    /// Errors as [`Normalized::new`]; nothing is registered or removed.
    pub fn new_folded(vs: &VarStore, mut layer: L, options: R::Options) -> Result<Self> {
        let p = prepare::<L, R>(vs, &layer, options, true)?;
        for ((_, trainable), copy) in p.others.iter().zip(&p.copies) {
            if *trainable {
                drop(copy.f_set_requires_grad(true).map_err(crate::backend::tch_err("requires_grad_"))?);
            }
        }
        layer.set_weight(p.weight.shallow_clone());
        Ok(Normalized {
            layer,
            store: p.store,
            module: p.module,
            reparam: p.reparam,
            entries: Entries { plain: p.weight, others: p.copies },
            groups: p.others.iter().map(|(_, trainable)| trainable.then_some(0)).collect(),
            others: p.others,
            folded: true,
            cache: WeightCache::default(),
            guards: R::Guards::default(),
            last_sigma: Default::default(),
            recycling: R::RECYCLES_WEIGHT,
            weight_slot: WeightSlot::default(),
        })
    }

    /// The wrapped layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }

    /// Where the layer lives in the VarStore (the prefix of its state-dict names).
    pub fn module_path(&self) -> &ModulePath {
        &self.module
    }

    /// The reparametrization and its settings (dim, iterations, eps).
    pub fn reparametrization(&self) -> &R {
        &self.reparam
    }

    /// The entry registered (or, while folded, kept) under `suffix`, if this layer has one.
    /// While folded the plain entry is the plain `weight`.
    pub fn entry(&self, suffix: Suffix) -> Option<&Tensor> {
        if suffix == R::SCHEME.plain() {
            return Some(&self.entries.plain);
        }
        self.others.iter().position(|(s, _)| *s == suffix).map(|i| &self.entries.others[i])
    }

    /// The effective weight, as the module's forward reads it in mode `train`: recomputed
    /// now from the current entries (differentiable); in training mode spectral norm
    /// iterates first, updating its vectors in place (the hook API's forward pre-hook, the
    /// parametrization's every access). While folded: the plain weight itself.
    pub fn weight_t(&self, train: bool) -> Result<Tensor> {
        if self.folded {
            return Ok(self.entries.plain.shallow_clone());
        }
        let layer = if self.guards == R::Guards::default() { String::new() } else { self.module.to_string() };
        let compute = || self.reparam.weight_and_sigma(&self.entries, train, &self.guards, &layer);
        let (weight, sigma) = if self.recycling { self.weight_slot.with_slot(compute)? } else { compute()? };
        if let Some(sigma) = sigma {
            // A detached alias of the graph's σ: no op is added, no bit changes.
            let sigma = sigma.f_detach().map_err(crate::backend::tch_err("detach"))?;
            *self.last_sigma.lock().unwrap_or_else(|e| e.into_inner()) = Some(sigma);
        }
        Ok(weight)
    }

    /// Whether the weight may be divided into the storage of the previous weight once nothing
    /// holds it ([`crate::weight_recycling`]: same bits and graph as PyTorch, no fresh
    /// weight-sized allocation per forward). On by default for spectral norm (both APIs);
    /// weight norm never recycles.
    pub fn weight_recycling(&self) -> bool {
        self.recycling
    }

    /// How many weights this layer divided into its previous weight's storage
    /// ([`crate::weight_recycling`]) so far.
    pub fn recycled_weights(&self) -> u64 {
        self.weight_slot.recycled()
    }

    /// Turns weight recycling ([`crate::weight_recycling`]) on or off (for spectral norm;
    /// weight norm ignores it). Off frees the layer's buffer once no weight uses it; the
    /// cost of off is a fresh weight-sized allocation (and, from 32 MiB, its page faults)
    /// every forward, as in PyTorch.
    pub fn set_weight_recycling(&mut self, on: bool) {
        self.recycling = on && R::RECYCLES_WEIGHT;
        if !self.recycling {
            self.weight_slot.clear();
        }
    }

    /// The opt-in guards in force ([`norm_core::guards`]).
    pub fn guards(&self) -> &R::Guards {
        &self.guards
    }

    /// Sets the opt-in guards ([`norm_core::guards`]): weight norm's
    /// [`WeightNormGuards`](norm_core::weight_norm::WeightNormGuards) (`eps`: `g · v / max(‖v‖, eps)`),
    /// spectral norm's [`SpectralNormGuards`](norm_core::spectral_norm::SpectralNormGuards)
    /// (`sigma_floor`: `weight_orig / max(σ, sigma_floor)`), and for both `checked`: a weight
    /// computation meeting a non-finite weight or a zero or non-finite divisor returns
    /// [`Error::NonFinite`] naming this layer's module path and the value, instead of a NaN
    /// weight. Drops the cached eval-mode weight.
    ///
    /// Errors: an eps or floor that is not positive and finite (the guards are unchanged).
    ///
    /// ```
    /// use norm_tch::layers::{linear, weight_norm, LinearConfig, WeightNormGuards};
    /// # fn main() -> norm_tch::Result<()> {
    /// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    /// let fc = linear(&(vs.root() / "fc"), 3, 2, LinearConfig::default())?;
    /// let mut fc = weight_norm(&vs, fc, Some(0))?;
    /// fc.set_guards(WeightNormGuards { eps: None, checked: true })?;
    /// tch::no_grad(|| drop(fc.weight_v().shallow_clone().zero_())); // ‖v‖ = 0: PyTorch would return NaN
    /// let err = fc.f_forward(&tch::Tensor::ones([1, 3], (tch::Kind::Float, tch::Device::Cpu))).unwrap_err();
    /// assert!(matches!(err, norm_tch::Error::NonFinite { quantity: "‖v‖", .. }), "{err}");
    /// # Ok(()) }
    /// ```
    pub fn set_guards(&mut self, guards: R::Guards) -> Result<()> {
        norm_core::guards::Guards::validate(&guards)?;
        self.guards = guards;
        self.cache.clear();
        Ok(())
    }

    /// [`Normalized::set_guards`], by value: `spectral_norm(&vs, conv, options)?.with_guards(guards)?`.
    pub fn with_guards(mut self, guards: R::Guards) -> Result<Self> {
        self.set_guards(guards)?;
        Ok(self)
    }

    /// The training forward (`forward_t(xs, true)`) and the weight it used, as PyTorch's
    /// forward pre-hook leaves it in `module.weight`: its value. Where the layer fuses the
    /// weight with its forward (the hook API's weight norm on a [`WeightedLayer`] whose
    /// [`WeightedLayer::forward_weight_normed`] accepts the input, with the default guards:
    /// see [`Normalized::f_forward_t`]), the weight carries no autograd history; otherwise it
    /// is the graph's weight. Either way the output and every gradient have PyTorch's bits.
    ///
    /// The fused path applies only when the weight needs a graph (grad mode on, an input
    /// requiring grad); it counts as a cache bypass, as the unfused training forward does.
    pub fn f_forward_t_and_weight(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        if let Some(fused) = self.fused_forward(xs)? {
            self.cache.note_bypass();
            return Ok(fused);
        }
        if self.folded {
            return Ok((self.layer.forward_with_weight(xs, &self.entries.plain)?, self.entries.plain.shallow_clone()));
        }
        let weight = self.cache.bypass(|| self.weight_t(true))?;
        Ok((self.layer.forward_with_weight(xs, &weight)?, weight))
    }

    /// The fused training forward ([`WeightedLayer::forward_weight_normed`]) when it applies:
    /// not folded, the default guards, a reparametrization whose weight is
    /// `torch._weight_norm(plain, others[0], dim)`, and the layer accepting the input.
    fn fused_forward(&self, xs: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
        if self.folded || self.guards != R::Guards::default() {
            return Ok(None);
        }
        let Some(dim) = self.reparam.fused_weight_norm_dim() else { return Ok(None) };
        self.layer.forward_weight_normed(xs, &self.entries.plain, self.entries.other(0)?, dim)
    }

    /// The forward pass in training (`train = true`: spectral norm iterates, and the weight
    /// is always recomputed and the cached one dropped) or eval mode. When the weight needs
    /// a graph, the hook API's weight norm on a Linear with a bias and a 2-D input that does
    /// not require grad records one autograd node for weight and forward together (`csrc/weight_norm_linear.cpp`: the calls of
    /// PyTorch's three nodes, same bits; [`WeightedLayer::forward_weight_normed`]). In eval mode, when the
    /// weight needs no graph (under `tch::no_grad`, or no entry requiring grad), the weight
    /// computed by the last such forward is reused while the entries are unchanged (same
    /// bits; see [`super::cache`]). While folded: the plain layer's forward.
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if self.folded {
            return self.layer.forward_with_weight(xs, &self.entries.plain);
        }
        if let Some((output, _)) = self.fused_forward(xs)? {
            self.cache.note_bypass();
            return Ok(output);
        }
        let weight = if train {
            self.cache.bypass(|| self.weight_t(true))?
        } else {
            let keyed: Vec<&Tensor> = std::iter::once(&self.entries.plain).chain(&self.entries.others).collect();
            self.cache.eval_weight(&keyed, || self.weight_t(false))?
        };
        self.layer.forward_with_weight(xs, &weight)
    }

    /// The counters of the eval-mode weight cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops the cached eval-mode weight (only needed after writes the cache cannot see:
    /// through raw data pointers).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// Whether the layer is folded into a plain `weight`.
    pub fn is_folded(&self) -> bool {
        self.folded
    }
}
