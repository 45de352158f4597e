//! Folding a normalized layer into a plain `weight` and unfolding it back, keeping the
//! tensors an optimizer holds ([`Foldable`], [`fold_all`], [`unfold_all`]); and the
//! eval-mode weight cache every normalized layer carries ([`CacheStats`]).
//!
//! # Fold / unfold
//!
//! `fold` replaces a layer's reparametrization by a plain `<prefix>.weight` parameter
//! holding the normalized weight (the layer then computes exactly what the plain layer
//! does); `unfold` turns that plain weight back into the reparametrization. Unlike
//! PyTorch's `remove_weight_norm` / `weight_norm` pair, which create new `Parameter`
//! objects (an optimizer built before then keeps updating tensors the model no longer
//! uses), both reuse the tensors already in the [`VarStore`]: an optimizer built from
//! `vs.trainable_variables()` before a fold keeps updating the tensors the model uses after
//! the fold and after the unfold. Which tensor becomes which:
//!
//! | layer | folded `weight` is the tensor of | kept out of the store while folded |
//! | --- | --- | --- |
//! | [`WeightNorm`] | `weight_v` | `weight_g` |
//! | [`SpectralNorm`] | `weight_orig` | buffers `weight_u`, `weight_v` |
//! | [`Parametrized`] weight norm | `parametrizations.weight.original1` (v) | `parametrizations.weight.original0` (g) |
//! | [`Parametrized`] spectral norm | `parametrizations.weight.original` | buffers `parametrizations.weight.0._u`, `._v` |
//!
//! - **fold** computes the normalized weight from the current parameters under `no_grad`
//!   (spectral norm: from the stored `u`, `v`, without iterating, as PyTorch's
//!   `remove_spectral_norm` does), writes it in place (`copy_`) into the tensor of the
//!   table, renames that tensor to `weight`, and takes the others out of the store. The
//!   layer's forward is then the plain layer's forward with that weight, bit for bit.
//! - **unfold** renames `weight` back and puts the kept tensors back into the store, under
//!   their names and (for g) their optimizer group. Weight norm sets `v = w` (the same
//!   tensor, untouched) and `g = norm_except_dim(w, 2, dim)` (‖w‖ per slice), written in
//!   place into the kept g tensor. Spectral norm reuses the kept `u`, `v` as they are (no
//!   draw, no iteration; a folded weight has the singular vectors of the unfolded one).
//!   The effective weight after unfold equals the folded weight up to rounding
//!   (`g * w / ‖w‖` with `g = ‖w‖`, resp. `w / σ(w)` with `σ(w) ≈ 1` for a weight that
//!   was folded and not trained since), not bit for bit.
//! - **Optimizer state.** The folded weight *is* the tensor of v (resp. `weight_orig`,
//!   `original1`, `original`): the optimizer keeps updating it, and its Adam moments, which
//!   were estimated for v's gradients, continue as moments of the plain weight's. g has no
//!   counterpart in a folded layer: while folded, g gets no gradient, so Adam skips it and
//!   its state is orphaned (frozen, not dropped); after unfold g is overwritten with ‖w‖
//!   in place and its old state resumes. Fold and unfold set the gradients of the tensors
//!   they touch to `None` (a gradient of v is not one of w). A new optimizer built after
//!   unfold sees g last in `vs.trainable_variables()` (it was re-added).
//! - Fold on a folded layer and unfold on an unfolded one do nothing. A folded layer's
//!   `remove` just returns the plain layer (its `weight` is already the plain parameter).
//! - Errors (nothing changed): the store lacks one of the layer's tensors under its name,
//!   or holds another tensor there, or the target name (`weight` for fold) is taken.
//!
//! # Cached inference
//!
//! Every normalized layer keeps the last weight it computed for an eval-mode forward
//! (`f_forward_t(xs, false)`; for [`WeightNorm`], which has no mode, `f_forward`) and
//! reuses it until one of its parameters or buffers changes. Changes are detected without
//! any call from the user: the key is, per tensor, ATen's version counter (bumped by every
//! in-place op: optimizer steps, `copy_` from `VarStore::load`/`copy`, `fill_`, ...), its
//! data pointer and its sizes/strides/dtype/device (which `set_data`, as in
//! `VarStore::set_kind`, changes without bumping the version). The cached weight is the
//! same computation on the same inputs as the uncached one, so its bits are the same.
//!
//! - The cache is only used when the weight needs no autograd graph: grad mode off
//!   (`tch::no_grad`), or no parameter requires grad (a frozen store). An eval forward with
//!   grad mode on and parameters requiring grad recomputes every time (so backpropagating
//!   through it gives exact gradients for g, v, ...) and drops the cached weight: that is
//!   what a training loop does.
//! - A training forward (`f_forward_t(xs, true)`) always recomputes (spectral norm
//!   iterates) and drops the cached weight.
//! - Writes the key cannot see (through raw data pointers) need
//!   [`WeightNorm::clear_cache`] (and the other layers' `clear_cache`).
//! - Memory: one weight-sized tensor per layer while an entry is cached.
//!
//! [`WeightNorm`]: super::WeightNorm
//! [`SpectralNorm`]: super::SpectralNorm
//! [`Parametrized`]: super::Parametrized
//! [`WeightNorm::clear_cache`]: super::WeightNorm::clear_cache

use crate::backend::tch_err;
use crate::ffi;
use crate::var_store::ModulePath;
use norm_core::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tch::nn::{VarStore, Variables};
use tch::Tensor;

/// A normalized layer that can trade its reparametrization for a plain `weight` and back,
/// keeping the tensors an optimizer holds (see the [module docs](self)).
pub trait Foldable {
    /// Whether the layer is folded (a plain `weight`).
    fn is_folded(&self) -> bool;
    /// Folds the normalized weight into a plain `<prefix>.weight`; nothing if folded.
    fn fold(&mut self, vs: &VarStore) -> Result<()>;
    /// Restores the reparametrization from the plain weight; nothing if not folded.
    fn unfold(&mut self, vs: &VarStore) -> Result<()>;
}

/// Folds every layer, in order. On an error the layers before the failing one stay folded,
/// the failing one and those after it are unchanged.
pub fn fold_all<'a>(vs: &VarStore, layers: impl IntoIterator<Item = &'a mut dyn Foldable>) -> Result<()> {
    layers.into_iter().try_for_each(|layer| layer.fold(vs))
}

/// Unfolds every layer, in order (errors as [`fold_all`]).
pub fn unfold_all<'a>(vs: &VarStore, layers: impl IntoIterator<Item = &'a mut dyn Foldable>) -> Result<()> {
    layers.into_iter().try_for_each(|layer| layer.unfold(vs))
}

// ---------------------------------------------------------------------------------------
// VarStore entries moved out and back with their identity.

fn lock(vs: &VarStore) -> MutexGuard<'_, Variables> {
    vs.variables_.lock().unwrap_or_else(|e| e.into_inner())
}

fn same_tensor(a: &Tensor, b: &Tensor) -> bool {
    a.data_ptr() == b.data_ptr() && a.size() == b.size() && a.kind() == b.kind()
}

/// Checks that each `(name, tensor)` of `present` is registered under the module with that
/// very tensor, and that no name of `absent` is registered.
pub(crate) fn check_entries(
    vs: &VarStore,
    path: &ModulePath,
    present: &[(&str, &Tensor)],
    absent: &[&str],
) -> Result<()> {
    let vars = lock(vs);
    for (name, tensor) in present {
        let full = path.full_name(name);
        match vars.named_variables.get(&full) {
            None => {
                return Err(Error::MissingParameter {
                    name: full,
                    module: format!("the VarStore (module `{}`)", path.prefix()),
                })
            }
            Some(t) if !same_tensor(t, tensor) => {
                return Err(Error::invalid(
                    "vs",
                    format!("a store whose `{full}` is another tensor"),
                    "the store the layer was registered in, unchanged",
                ))
            }
            Some(_) => {}
        }
    }
    for name in absent {
        let full = path.full_name(name);
        if vars.named_variables.contains_key(&full) {
            return Err(Error::invalid("name", &full, "a parameter name not yet registered in the VarStore"));
        }
    }
    Ok(())
}

/// Takes variable `name` out of the store, returning its optimizer group (`None` for a
/// buffer). The caller keeps its own handle to the tensor.
pub(crate) fn take_entry(vs: &VarStore, path: &ModulePath, name: &str) -> Result<Option<usize>> {
    let full = path.full_name(name);
    let mut vars = lock(vs);
    let tensor = vars
        .named_variables
        .remove(&full)
        .ok_or_else(|| Error::MissingParameter { name: full.clone(), module: format!("module `{}`", path.prefix()) })?;
    let position = vars.trainable_variables.iter().position(|v| same_tensor(&v.tensor, &tensor));
    Ok(position.map(|i| vars.trainable_variables.remove(i).group))
}

/// Puts `tensor` itself (not a copy) back into the store as `name`: trainable in optimizer
/// group `group`, or a buffer for `None`.
pub(crate) fn put_entry(
    vs: &VarStore,
    path: &ModulePath,
    name: &str,
    tensor: &Tensor,
    group: Option<usize>,
) -> Result<()> {
    let full = path.full_name(name);
    if lock(vs).named_variables.contains_key(&full) {
        return Err(Error::invalid("name", &full, "a parameter name not yet registered in the VarStore"));
    }
    // tch's `Path::add` registers the handle it is given (`requires_grad_` keeps the
    // tensor); its paths take one component at a time.
    let mut components: Vec<&str> = full.split('.').collect();
    let leaf = components.pop().unwrap_or_default();
    let root = vs.root().set_group(group.unwrap_or(0));
    let parent = components.into_iter().fold(root, |p, c| p.sub(c));
    drop(parent.add(leaf, tensor.shallow_clone(), group.is_some()));
    Ok(())
}

/// `dst.copy_(src)` under `no_grad` (in place: same storage, version bumped).
pub(crate) fn write_in_place(dst: &Tensor, src: &Tensor) -> Result<()> {
    let mut dst = dst.shallow_clone();
    tch::no_grad(|| dst.f_copy_(src)).map(drop).map_err(tch_err("copy_"))
}

/// `t.grad = None`.
pub(crate) fn clear_grad(t: &Tensor) -> Result<()> {
    ffi::clear_grad(t)
}

/// Moves `t` (a tensor kept out of the store while folded) to `like`'s device and dtype if
/// the store was converted meanwhile (`set_data`, as `VarStore::set_kind` does).
pub(crate) fn match_device_and_kind(t: &Tensor, like: &Tensor) -> Result<()> {
    if t.device() != like.device() || t.kind() != like.kind() {
        let moved = t.f_to_device(like.device()).and_then(|m| m.f_to_kind(like.kind())).map_err(tch_err("to"))?;
        let mut t = t.shallow_clone();
        tch::no_grad(|| t.set_data(&moved));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The eval-mode weight cache.

/// Counters of a layer's eval-mode weight cache (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Eval forwards that reused the cached weight.
    pub hits: u64,
    /// Eval forwards that computed the weight and cached it (first use, or a parameter changed).
    pub computed: u64,
    /// Forwards that computed the weight without the cache: training forwards, and eval
    /// forwards whose weight needs a graph (grad mode on, parameters requiring grad).
    pub bypassed: u64,
}

/// At most this many tensors key a cached weight (spectral norm: weight, u, v).
const MAX_KEYED: usize = 3;
type Key = [[i64; 3]; MAX_KEYED];

#[derive(Debug)]
struct Entry {
    key: Key,
    weight: Tensor,
}

/// The last eval-mode weight of a layer with the fingerprints of the tensors it came from.
/// `Send + Sync` (a mutex), as `tch::nn::Module` requires.
#[derive(Debug, Default)]
pub(crate) struct WeightCache {
    entry: Mutex<Option<Entry>>,
    hits: AtomicU64,
    computed: AtomicU64,
    bypassed: AtomicU64,
}

impl WeightCache {
    fn lock(&self) -> MutexGuard<'_, Option<Entry>> {
        // A poisoned lock only means a compute panicked; the entry is still consistent.
        self.entry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The weight for an eval-mode forward: the cached one if the tensors `keyed` are
    /// unchanged since it was computed, else `compute()` (cached when it needs no graph).
    pub(crate) fn eval_weight(&self, keyed: &[&Tensor], compute: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
        let mut key: Key = [[0; 3]; MAX_KEYED];
        match ffi::tensor_fingerprints(keyed, &mut key) {
            Ok(false) => {}
            // The weight needs a graph (or a tensor has no version counter): no caching.
            Ok(true) | Err(_) => return self.bypass(compute),
        }
        let mut entry = self.lock();
        if let Some(e) = entry.as_ref().filter(|e| e.key == key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e.weight.shallow_clone());
        }
        *entry = None; // free the stale weight before computing the new one
        let weight = compute()?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        *entry = Some(Entry { key, weight: weight.shallow_clone() });
        Ok(weight)
    }

    /// `compute()` without the cache, dropping the cached weight (training forwards).
    pub(crate) fn bypass(&self, compute: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
        self.clear();
        self.bypassed.fetch_add(1, Ordering::Relaxed);
        compute()
    }

    /// Drops the cached weight.
    pub(crate) fn clear(&self) {
        *self.lock() = None;
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            computed: self.computed.load(Ordering::Relaxed),
            bypassed: self.bypassed.load(Ordering::Relaxed),
        }
    }
}
