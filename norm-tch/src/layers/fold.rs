//! Folding a [`Normalized`] layer into a plain `weight` and unfolding it back, keeping the
//! tensors an optimizer holds ([`Foldable`], [`fold_all`], [`unfold_all`]), and removing the
//! reparametrization as PyTorch's `remove_*` functions do ([`Normalized::remove`]); written
//! once for every reparametrization.
//!
//! # Fold / unfold
//!
//! `fold` replaces a layer's reparametrization by a plain `<prefix>.weight` parameter
//! holding the normalized weight (the layer then computes exactly what the plain layer
//! does); `unfold` turns that plain weight back into the reparametrization. Unlike
//! PyTorch's `remove_weight_norm` / `weight_norm` pair, which create new `Parameter`
//! objects (an optimizer built before then keeps updating tensors the model no longer
//! uses), both reuse the tensors already in the `VarStore`: an optimizer built from
//! `vs.trainable_variables()` before a fold keeps updating the tensors the model uses after
//! the fold and after the unfold. Which tensor becomes which:
//!
//! | layer | folded `weight` is the tensor of | kept out of the store while folded |
//! | --- | --- | --- |
//! | [`WeightNorm`] | `weight_v` | `weight_g` |
//! | [`SpectralNorm`] | `weight_orig` | buffers `weight_u`, `weight_v` |
//! | [`ParametrizedWeightNorm`] | `parametrizations.weight.original1` (v) | `parametrizations.weight.original0` (g) |
//! | [`ParametrizedSpectralNorm`] | `parametrizations.weight.original` | buffers `parametrizations.weight.0._u`, `._v` |
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
//! [`WeightNorm`]: super::WeightNorm
//! [`SpectralNorm`]: super::SpectralNorm
//! [`ParametrizedWeightNorm`]: super::ParametrizedWeightNorm
//! [`ParametrizedSpectralNorm`]: super::ParametrizedSpectralNorm

use super::normalized::Normalized;
use super::reparam::Reparametrization;
use super::WeightedLayer;
use crate::backend::tch_err;
use crate::ffi;
use crate::var_store::{detached_copy, ModulePath, Store};
use norm_core::{Error, Result};
use tch::Tensor;

/// A normalized layer that can trade its reparametrization for a plain `weight` and back,
/// keeping the tensors an optimizer holds (see the [module docs](self)).
pub trait Foldable {
    /// Whether the layer is folded (a plain `weight`).
    fn is_folded(&self) -> bool;
    /// Folds the normalized weight into a plain `<prefix>.weight`; nothing if folded.
    fn fold(&mut self) -> Result<()>;
    /// Restores the reparametrization from the plain weight; nothing if not folded.
    fn unfold(&mut self) -> Result<()>;
}

/// Folds every layer, in order. On an error the layers before the failing one stay folded,
/// the failing one and those after it are unchanged.
pub fn fold_all<'a>(layers: impl IntoIterator<Item = &'a mut dyn Foldable>) -> Result<()> {
    layers.into_iter().try_for_each(|layer| layer.fold())
}

/// Unfolds every layer, in order (errors as [`fold_all`]).
pub fn unfold_all<'a>(layers: impl IntoIterator<Item = &'a mut dyn Foldable>) -> Result<()> {
    layers.into_iter().try_for_each(|layer| layer.unfold())
}

impl<L: WeightedLayer, R: Reparametrization> Foldable for Normalized<L, R> {
    fn is_folded(&self) -> bool {
        self.folded
    }
    fn fold(&mut self) -> Result<()> {
        Normalized::fold(self)
    }
    fn unfold(&mut self) -> Result<()> {
        Normalized::unfold(self)
    }
}

impl<L: WeightedLayer, R: Reparametrization> Normalized<L, R> {
    fn plain_suffix(&self) -> &'static str {
        R::SCHEME.plain().as_str()
    }

    /// The entries as the store holds them while unfolded: `(name, tensor)`, plain first.
    fn named_entries(&self) -> Vec<(&'static str, &Tensor)> {
        let others = self.others.iter().zip(&self.entries.others).map(|((s, _), t)| (s.as_str(), t));
        std::iter::once((self.plain_suffix(), &self.entries.plain)).chain(others).collect()
    }

    /// Sets the gradients of the plain tensor and of the parameters among the others to `None`.
    fn clear_grads(&self) -> Result<()> {
        ffi::clear_grad(&self.entries.plain)?;
        for ((_, trainable), t) in self.others.iter().zip(&self.entries.others) {
            if *trainable {
                ffi::clear_grad(t)?;
            }
        }
        Ok(())
    }

    /// Folds the effective weight, evaluated once without iterating (spectral norm: stored
    /// `u`, `v`, as `remove_spectral_norm` computes it) under `no_grad`, into the plain
    /// tensor, in place, which becomes the plain `<prefix>.weight`; the others leave the
    /// store (kept for [`Normalized::unfold`]). Nothing if folded. See the [module docs](self).
    pub fn fold(&mut self) -> Result<()> {
        if self.folded {
            return Ok(());
        }
        check_entries(&self.store, &self.module, &self.named_entries(), &["weight"])?;
        let weight = tch::no_grad(|| self.weight_t(false))?;
        write_in_place(&self.entries.plain, &weight)?;
        let mut groups = Vec::with_capacity(self.others.len());
        for (suffix, _) in &self.others {
            groups.push(self.store.take(&self.module.full_name(suffix.as_str()))?.group);
        }
        drop(self.store.rename(&self.module.full_name(self.plain_suffix()), &self.module.full_name("weight"))?);
        self.layer.set_weight(self.entries.plain.shallow_clone());
        self.groups = groups;
        self.folded = true;
        self.cache.clear();
        self.weight_slot.clear();
        self.clear_grads()
    }

    /// Unfolds the plain weight `w`, which becomes the plain entry again (the same tensor);
    /// the kept others return to the store under their names and optimizer groups, weight
    /// norm's g first rewritten in place as `norm_except_dim(w, 2, dim)` (`right_inverse`),
    /// spectral norm's `u`, `v` unchanged (no draw, no iteration). Nothing if not folded.
    pub fn unfold(&mut self) -> Result<()> {
        if !self.folded {
            return Ok(());
        }
        let absent: Vec<&str> = self.named_entries().into_iter().map(|(name, _)| name).collect();
        check_entries(&self.store, &self.module, &[("weight", &self.entries.plain)], &absent)?;
        for t in &self.entries.others {
            match_device_and_kind(t, &self.entries.plain)?;
        }
        self.reparam.unfold_others(&self.entries)?;
        drop(self.store.rename(&self.module.full_name("weight"), &self.module.full_name(self.plain_suffix()))?);
        for (((suffix, _), t), group) in self.others.iter().zip(&self.entries.others).zip(&self.groups) {
            self.store.put(&self.module.full_name(suffix.as_str()), t, *group)?;
        }
        self.folded = false;
        self.cache.clear();
        self.clear_grads()
    }

    /// PyTorch's `remove_weight_norm` / `remove_spectral_norm` /
    /// `remove_parametrizations(module, "weight", leave_parametrized=True)` for a module in
    /// mode `train`: the effective weight is computed once more (under `no_grad`; only the
    /// parametrization API evaluates it in the module's mode, so only its spectral norm
    /// iterates, when `train`) and becomes the plain `<prefix>.weight`; the entries leave the
    /// store, and the layer is returned. The parametrization API's spectral norm keeps the
    /// `original` tensor itself (PyTorch `set_`s it, so an optimizer holding it keeps
    /// working); the others get a new parameter, as in PyTorch. A folded layer is returned
    /// as it is (its `weight` is the plain parameter already; `train` does not matter).
    ///
    /// Errors (the store unchanged): the store lacks one of the layer's entries, holds
    /// another tensor under its name, or already has a `weight` under the module.
    pub fn remove(mut self, train: bool) -> Result<L> {
        if self.folded {
            check_entries(&self.store, &self.module, &[("weight", &self.entries.plain)], &[])?;
            self.layer.set_weight(self.entries.plain);
            return Ok(self.layer);
        }
        check_entries(&self.store, &self.module, &self.named_entries(), &["weight"])?;
        let value = tch::no_grad(|| self.weight_t(train && R::REMOVE.evaluates_in_mode))?;
        let value = value.f_detach().map_err(tch_err("detach"))?;
        let plain_name = self.module.full_name(self.plain_suffix());
        let weight_name = self.module.full_name("weight");
        let weight = if R::REMOVE.keeps_plain {
            let weight = self.store.rename(&plain_name, &weight_name)?;
            self.take_others()?;
            write_in_place(&weight, &value)?;
            weight
        } else {
            // A new parameter in group 0, as PyTorch's `remove_*` registers a new Parameter;
            // made before the first change.
            let weight = detached_copy(&value)?;
            self.take_others()?;
            drop(self.store.take(&plain_name)?);
            self.store.put(&weight_name, &weight, Some(0))?;
            weight
        };
        self.layer.set_weight(weight);
        Ok(self.layer)
    }

    fn take_others(&self) -> Result<()> {
        for (suffix, _) in &self.others {
            drop(self.store.take(&self.module.full_name(suffix.as_str()))?);
        }
        Ok(())
    }
}

/// Checks that each `(name, tensor)` of `present` is registered under the module with that
/// very tensor, and that no name of `absent` is registered.
fn check_entries(store: &Store, module: &ModulePath, present: &[(&str, &Tensor)], absent: &[&str]) -> Result<()> {
    for (name, tensor) in present {
        let full = module.full_name(name);
        match store.get(&full) {
            None => return Err(Error::MissingParameter { name: full, module: format!("the VarStore ({module})") }),
            Some(t) if !ffi::same_tensor(&t, tensor) => {
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
        let full = module.full_name(name);
        if store.contains(&full) {
            return Err(Error::invalid("name", &full, "a parameter name not yet registered in the VarStore"));
        }
    }
    Ok(())
}

/// `dst.copy_(src)` under `no_grad` (in place: same storage, version bumped).
pub(crate) fn write_in_place(dst: &Tensor, src: &Tensor) -> Result<()> {
    let mut dst = dst.shallow_clone();
    tch::no_grad(|| dst.f_copy_(src)).map(drop).map_err(tch_err("copy_"))
}

/// Moves `t` (a tensor kept out of the store while folded) to `like`'s device and dtype if
/// the store was converted meanwhile (`set_data`, as `VarStore::set_kind` does).
fn match_device_and_kind(t: &Tensor, like: &Tensor) -> Result<()> {
    if t.device() != like.device() || t.kind() != like.kind() {
        let moved = t.f_to_device(like.device()).and_then(|m| m.f_to_kind(like.kind())).map_err(tch_err("to"))?;
        let mut t = t.shallow_clone();
        tch::no_grad(|| t.set_data(&moved));
    }
    Ok(())
}
