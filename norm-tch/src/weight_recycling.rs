//! Recycling a spectral-norm layer's weight storage: `weight_orig / σ` (PyTorch's
//! `torch.div(weight_orig, sigma)`) written into the storage of the layer's previous
//! weight once nothing else holds it, instead of into a fresh weight-sized allocation
//! every forward (`csrc/div_recycled.cpp`).
//!
//! **Why**: from 32 MiB up glibc serves a fresh tensor with `mmap` and unmaps it on free,
//! so each forward page-faults the whole new weight in; at 4096² float32 that costs several
//! times the division itself. PyTorch pays it on every forward; a recycled storage is
//! already mapped.
//!
//! **Same bits**: the division runs as `at::div_out` into the old storage, the same kernel
//! over the same operands in the same order as `at::div`, each element one IEEE division
//! by the same σ. The result is a new tensor on that storage (version 0) with the history
//! PyTorch's `div` gives it (ATen's `DivBackward0`, set up as autograd's own div kernel
//! does), so the forward and every gradient keep PyTorch's bits
//! (`tests/spectral_norm_recycling.rs` checks both against live PyTorch).
//!
//! **The rule**: the layer keeps one private handle (the *slot*) on the storage of the last
//! weight it computed. A division reuses that storage only when the slot's handle is the
//! storage's only reference: no tensor, view, shallow clone, autograd saved variable or
//! cache still holds the old weight, so nothing can read it again. In a training loop that
//! is the case once the previous step's graph is gone (its backward has run and its loss is
//! dropped); a weight still held (by the caller, by a graph not yet freed, by the eval-mode
//! cache) is never written, and the new weight goes to a fresh allocation, which becomes
//! the slot. Only a CPU, contiguous, floating weight divided by a 0-dim σ of its dtype,
//! outside inference mode and without forward-mode gradients, is recycled; anything else
//! (CUDA, whose caching allocator already reuses memory and whose streams this rule does
//! not see; a channels-last weight; ...) is a plain `torch.div`. A raw pointer
//! (`data_ptr`) kept past the drop of its tensor is not a reference and may see the next
//! weight.
//!
//! **Memory**: between forwards the layer keeps one weight-sized buffer, as PyTorch's hook
//! API does (it stores the last weight as `module.weight`); the parametrization API holds
//! none in PyTorch. [`Normalized::set_weight_recycling`](crate::layers::Normalized::set_weight_recycling)
//! turns recycling off and frees the buffer.
//!
//! Mechanics: the layer lends its slot to the thread for the duration of its weight
//! computation (`WeightSlot::with_slot`); [`crate::TchBackend`]'s `div` divides through the slot while
//! one is lent (`div_in_scope`) and as `torch.div` otherwise.

use crate::ffi;
use norm_core::Result;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tch::Tensor;

/// A layer's slot: the private handle on the storage of its last weight (`None`: none
/// yet, or recycling off), and how many weights were divided into a recycled storage.
#[derive(Debug, Default)]
pub(crate) struct WeightSlot {
    handle: Mutex<Option<Tensor>>,
    recycled: AtomicU64,
}

impl WeightSlot {
    /// Drops the handle (the layer's buffer is freed once no weight uses it).
    pub(crate) fn clear(&self) {
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// How many weights were divided into the previous weight's storage so far.
    pub(crate) fn recycled(&self) -> u64 {
        self.recycled.load(Ordering::Relaxed)
    }

    /// Runs `f` with this slot lent to the current thread's divisions. When another thread
    /// holds the slot (the same layer's weight computed concurrently), `f` runs without one.
    pub(crate) fn with_slot<T>(&self, f: impl FnOnce() -> T) -> T {
        let Ok(mut handle) = self.handle.try_lock() else { return f() };
        let lent =
            LentGuard { previous: LENT.with(|cell| cell.replace(Some(Lent { handle: handle.take(), recycled: 0 }))) };
        let result = f();
        if let Some(mine) = lent.finish() {
            *handle = mine.handle;
            self.recycled.fetch_add(mine.recycled, Ordering::Relaxed);
        }
        result
    }
}

/// The slot as lent to a thread.
struct Lent {
    handle: Option<Tensor>,
    /// Divisions into the recycled storage while lent.
    recycled: u64,
}

thread_local! {
    /// The slot lent to this thread (`None` outside [`WeightSlot::with_slot`]).
    static LENT: RefCell<Option<Lent>> = const { RefCell::new(None) };
}

/// A lending in progress: puts the previously lent slot (nesting) back when it ends, also
/// on unwinding.
struct LentGuard {
    previous: Option<Lent>,
}

impl LentGuard {
    /// Ends the lending, returning the slot as the divisions left it.
    fn finish(mut self) -> Option<Lent> {
        let previous = self.previous.take();
        let mine = LENT.with(|cell| cell.replace(previous));
        std::mem::forget(self);
        mine
    }
}

impl Drop for LentGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        LENT.with(|cell| drop(cell.replace(previous)));
    }
}

/// `torch.div(a, b)` through the slot lent to this thread (module docs): `None` when no slot
/// is lent (the caller divides as usual).
pub(crate) fn div_in_scope(a: &Tensor, b: &Tensor) -> Option<Result<Tensor>> {
    LENT.with(|cell| {
        let mut cell = cell.borrow_mut();
        let lent = cell.as_mut()?;
        let storage_before = lent.handle.as_ref().map(|h| h.data_ptr());
        Some(ffi::div_recycled(a, b, lent.handle.as_ref()).map(|(out, next)| {
            match next {
                Some(next) => lent.handle = Some(next),
                // The slot still holds its storage, so a fresh result cannot have its address.
                None if storage_before.is_some_and(|p| !p.is_null() && p == out.data_ptr()) => lent.recycled += 1,
                None => {}
            }
            out
        }))
    })
}
