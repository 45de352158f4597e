//! PyTorch checkpoints in and out of norm-tch models, against live PyTorch
//! (`tests/checkpoint.py`, run by the repo venv's python; it needs the `safetensors`
//! package from requirements.txt):
//!
//! - every checkpoint PyTorch saves (model `Conv1d → ConvTranspose1d → BatchNorm1d → Linear`,
//!   the three weighted layers under one scheme: folded, weight_norm hooks/parametrizations,
//!   spectral_norm hooks/parametrizations, spectral_norm's legacy version-None layout), as
//!   `.pt` and `.safetensors`, loads into a Rust model of every scheme, and the eval output
//!   is bit-equal to PyTorch's (the source model's; for folded → weight norm, PyTorch's
//!   weight_norm registered on the folded model; for folded → spectral norm with a seed,
//!   PyTorch's registration after `torch.manual_seed(seed)`; for legacy, PyTorch's own
//!   upgrade hook), or is refused (weight norm ↔ spectral norm; folded → spectral norm
//!   without a seed);
//! - the legacy upgrade gives PyTorch's `weight_v` bit for bit;
//! - every loaded model saved back by Rust (`.pt`, `.safetensors`) loads into the PyTorch
//!   model of the same schemes with `strict=True` (`.pt` through
//!   `torch.load(weights_only=True)`, a dict, not TorchScript), with the same output bits,
//!   and keeps `num_batches_tracked` int64;
//! - bad checkpoints (missing key, extra key, wrong shape, wrong shape in a converted layer,
//!   wrong dtype, truncated `.pt` and `.safetensors`, a text file, an empty file, a missing
//!   file) are errors naming the key and both shapes or the file, and leave every variable
//!   unchanged;
//! - `torch.save`'s strided views, storage offsets, shared storages, 11 dtypes, empty and
//!   0-dim tensors at pickle protocol 4 read byte for byte, and written back by Rust for
//!   PyTorch to read identically; a nested checkpoint and a TorchScript archive refused by name;
//! - without PyTorch: Rust → Rust round trips between compatible schemes, and loading into
//!   and saving from a VarStore on another device (CUDA where there is one).
//!
//! Without `.venv/bin/python` the test prints `SKIPPED` and passes, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{bail, ensure, Context, Result};
use norm_core::Error;
use norm_tch::checkpoint::{load_checkpoint, load_state_dict, save_state_dict, LoadOptions, Scheme, StateDict};
use norm_tch::layers::{
    conv1d, conv_transpose1d, linear, parametrizations, spectral_norm, weight_norm, Conv1d, ConvOptions,
    ConvTranspose1d, ConvTransposeOptions, LinearConfig, ParametrizedSpectralNorm, ParametrizedWeightNorm,
    SpectralNorm, SpectralNormOptions, WeightNorm, WeightedLayer,
};
use norm_test_support::{cuda_or_skip, f32_bits, tensor_from_f32_bits};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::{fresh_dir, python_or_skip};
use tch::nn::{Linear, VarStore};
use tch::{Device, Kind, Tensor};

const SOURCES: [&str; 6] = ["folded", "wn_hooks", "wn_param", "sn_hooks", "sn_param", "sn_legacy"];
const TARGETS: [&str; 5] = ["folded", "wn_hooks", "wn_param", "sn_hooks", "sn_param"];

#[derive(Deserialize, Clone, Debug, PartialEq)]
struct Bits {
    shape: Vec<i64>,
    bits: Vec<u32>,
}

#[derive(Deserialize)]
struct Expected {
    input: Bits,
    torch: String,
    seed: u64,
    outputs: BTreeMap<String, Bits>,
    upgraded: BTreeMap<String, Bits>,
}

fn script() -> PathBuf {
    support::repo().join("norm-tch/tests/checkpoint.py")
}

fn bits_of(t: &Tensor) -> Result<Bits> {
    Ok(Bits { shape: t.size(), bits: f32_bits(t) })
}

fn tensor_of(b: &Bits) -> Result<Tensor> {
    tensor_from_f32_bits(&b.shape, &b.bits)
}

/// A weighted layer under one scheme.
enum Normed<L: WeightedLayer> {
    Plain(L),
    Wn(WeightNorm<L>),
    Sn(SpectralNorm<L>),
    Pw(ParametrizedWeightNorm<L>),
    Ps(ParametrizedSpectralNorm<L>),
}

impl<L: WeightedLayer> Normed<L> {
    fn new(vs: &VarStore, layer: L, scheme: &str, wn_dim: Option<i64>) -> Result<Self> {
        Ok(match scheme {
            "folded" => Normed::Plain(layer),
            "wn_hooks" => Normed::Wn(weight_norm(vs, layer, wn_dim)?),
            "wn_param" => Normed::Pw(parametrizations::weight_norm(vs, layer, wn_dim)?),
            "sn_hooks" => Normed::Sn(spectral_norm(vs, layer, SpectralNormOptions::default())?),
            "sn_param" => Normed::Ps(parametrizations::spectral_norm(vs, layer, SpectralNormOptions::default())?),
            other => bail!("unknown scheme {other}"),
        })
    }

    /// The eval-mode forward.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Normed::Plain(l) => l.forward_with_weight(x, l.weight())?,
            Normed::Wn(l) => l.f_forward(x)?,
            Normed::Sn(l) => l.f_forward_t(x, false)?,
            Normed::Pw(l) => l.f_forward(x)?,
            Normed::Ps(l) => l.f_forward_t(x, false)?,
        })
    }
}

/// `nn.Sequential(Conv1d(3, 4, 3), ConvTranspose1d(4, 5, 2), BatchNorm1d(5), Linear(7, 6))`.
struct Model {
    vs: VarStore,
    conv: Normed<Conv1d>,
    conv_t: Normed<ConvTranspose1d>,
    bn: [Tensor; 4],
    linear: Normed<Linear>,
}

impl Model {
    fn new(scheme: &str) -> Result<Model> {
        Self::with_schemes([scheme; 3])
    }

    fn with_schemes(schemes: [&str; 3]) -> Result<Model> {
        let vs = VarStore::new(Device::Cpu);
        let _generator = norm_tch::backend::lock_global_generator();
        tch::manual_seed(0);
        let conv = conv1d(&(vs.root() / "0"), 3, 4, [3], ConvOptions::default())?;
        let conv = Normed::new(&vs, conv, schemes[0], Some(0))?;
        let conv_t = conv_transpose1d(&(vs.root() / "1"), 4, 5, [2], ConvTransposeOptions::default())?;
        let conv_t = Normed::new(&vs, conv_t, schemes[1], Some(1))?;
        let bn_path = vs.root() / "2";
        let bn = [
            bn_path.add("weight", Tensor::f_ones([5], (Kind::Float, Device::Cpu))?, true),
            bn_path.add("bias", Tensor::f_zeros([5], (Kind::Float, Device::Cpu))?, true),
            bn_path.add("running_mean", Tensor::f_zeros([5], (Kind::Float, Device::Cpu))?, false),
            bn_path.add("running_var", Tensor::f_ones([5], (Kind::Float, Device::Cpu))?, false),
        ];
        drop(bn_path.add("num_batches_tracked", Tensor::f_zeros([], (Kind::Int64, Device::Cpu))?, false));
        let lin = linear(&(vs.root() / "3"), 7, 6, LinearConfig::default())?;
        let linear = Normed::new(&vs, lin, schemes[2], None)?;
        Ok(Model { vs, conv, conv_t, bn, linear })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv.forward(x)?;
        let h = self.conv_t.forward(&h)?;
        let [w, b, rm, rv] = &self.bn;
        let h = Tensor::f_batch_norm(&h, Some(w), Some(b), Some(rm), Some(rv), false, 0.1, 1e-5, true)?;
        self.linear.forward(&h)
    }

    /// Deep copies of every variable, by name.
    fn snapshot(&self) -> Result<BTreeMap<String, Tensor>> {
        let entries = norm_tch::var_store::Store::of(&self.vs).entries();
        entries.iter().map(|(k, t)| Ok((k.clone(), norm_tch::var_store::detached_copy(t)?))).collect()
    }

    fn unchanged_since(&self, before: &BTreeMap<String, Tensor>) -> Result<()> {
        let now = self.snapshot()?;
        ensure!(
            now.keys().eq(before.keys()),
            "the VarStore's names changed: {:?} -> {:?}",
            before.keys().collect::<Vec<_>>(),
            now.keys().collect::<Vec<_>>()
        );
        for (k, t) in &now {
            let b = &before[k];
            ensure!(t.size() == b.size() && t.kind() == b.kind() && t.f_equal(b)?, "variable `{k}` changed");
        }
        Ok(())
    }
}

fn run_python(python: &Path, args: &[&str], stdin: Option<&Value>) -> Result<Vec<u8>> {
    norm_test_support::run_python(python, &script(), args, stdin)
}

/// What loading checkpoint `source` into a model of `target` must give: the key of
/// PyTorch's output in expected.json, or `None` when norm refuses the conversion.
fn expected_output(source: &str, target: &str) -> Option<String> {
    let family = |s: &str| {
        if s.starts_with("wn") {
            Some('w')
        } else if s.starts_with("sn") {
            Some('s')
        } else {
            None
        }
    };
    match (family(source), family(target)) {
        (None, None) => Some("folded".into()),
        (None, Some(_)) => Some(format!("folded->{target}")),
        (Some(_), None) => Some(source.into()),
        (Some(a), Some(b)) if a == b => Some(source.into()),
        _ => None,
    }
}

#[test]
fn pytorch_checkpoints_load_into_every_scheme_bit_for_bit() -> Result<()> {
    let Some(python) = python_or_skip("compare checkpoint loading against live PyTorch")? else { return Ok(()) };
    let dir = fresh_dir("checkpoint-parity")?;
    run_python(&python, &["make", dir.to_str().context("utf-8 dir")?], None)?;
    let expected: Expected = serde_json::from_slice(&std::fs::read(dir.join("expected.json"))?)?;
    norm_tch::backend::set_num_threads(1)?;
    let x = tensor_of(&expected.input)?;
    let seeded = LoadOptions {
        convert: norm_tch::checkpoint::ConvertOptions { spectral_seed: Some(expected.seed), ..Default::default() },
        ..Default::default()
    };

    // The _metadata of torch.save(model.state_dict()) arrives: version 1 for the hook API's
    // spectral norm, none in the legacy file (whose layers are then upgraded).
    ensure!(
        StateDict::read(dir.join("sn_hooks.pt"))?.spectral_norm_version("1") == Some(1),
        "sn_hooks.pt: spectral_norm version 1 not read from _metadata"
    );
    ensure!(
        StateDict::read(dir.join("sn_legacy.pt"))?.spectral_norm_version("1").is_none(),
        "sn_legacy.pt: a spectral_norm version read where there is none"
    );

    let (mut compared, mut refused, mut round_trips) = (0, 0, Vec::new());
    for source in SOURCES {
        for ext in ["pt", "safetensors"] {
            let file = dir.join(format!("{source}.{ext}"));
            for target in TARGETS {
                let what = format!("{source}.{ext} into a {target} model (torch {})", expected.torch);
                let mut model = Model::new(target)?;
                let before = model.snapshot()?;
                let result = load_checkpoint(&mut model.vs, &file, &seeded);
                let Some(key) = expected_output(source, target) else {
                    let e = result.err().with_context(|| {
                        format!("{what}: loaded, but weight norm <-> spectral norm must be refused")
                    })?;
                    ensure!(
                        matches!(&e, Error::Checkpoint { path: Some(_), .. })
                            && matches!(
                                e.checkpoint_kind(),
                                Some(norm_core::CheckpointErrorKind::Conversion {
                                    refusal: norm_core::error::ConversionRefusal::DifferentNorms,
                                    ..
                                })
                            )
                            && e.to_string().contains("different reparametrizations"),
                        "{what}: {e}"
                    );
                    model.unchanged_since(&before).with_context(|| what.clone())?;
                    refused += 1;
                    continue;
                };
                let report = result.with_context(|| what.clone())?;
                let conversions = if source == target { 0 } else { 3 };
                ensure!(report.conversions.len() == conversions, "{what}: conversions {:?}", report.conversions);
                let out = bits_of(&model.forward(&x)?)?;
                ensure!(out == expected.outputs[&key], "{what}: output differs from PyTorch's `{key}`");
                compared += 1;
                if source == "sn_legacy" && target == "sn_hooks" {
                    for (name, want) in &expected.upgraded {
                        let var = model.vs.variables()[name].shallow_clone();
                        let got = bits_of(&var)?;
                        ensure!(
                            &got == want,
                            "{what}: upgraded `{name}` differs from PyTorch's SpectralNormLoadStateDictPreHook"
                        );
                    }
                }
                if ext == "pt" {
                    for out_ext in ["pt", "safetensors"] {
                        let path = dir.join(format!("rust-{source}-into-{target}.{out_ext}"));
                        save_state_dict(&model.vs, &path)?;
                        round_trips.push((path, target, out.clone()));
                    }
                }
            }
        }
    }
    // Folded -> spectral norm without a seed is refused, leaving the model as it was.
    let mut model = Model::new("sn_param")?;
    let before = model.snapshot()?;
    let e = load_checkpoint(&mut model.vs, dir.join("folded.pt"), &LoadOptions::default())
        .err()
        .context("folded -> spectral norm without a seed loaded")?;
    ensure!(e.to_string().contains("seed") && e.to_string().contains("layer `0`"), "{e}");
    model.unchanged_since(&before)?;
    refused += 1;

    // Rust's saved files, read by PyTorch with strict=True.
    let items: Vec<Value> =
        round_trips.iter().map(|(p, t, _)| json!({"path": p, "model": "main", "schemes": [t, t, t]})).collect();
    let request = json!({"input": {"shape": expected.input.shape, "bits": expected.input.bits}, "items": items});
    let checked: Value = serde_json::from_slice(&run_python(&python, &["check"], Some(&request))?)?;
    let results = checked["results"].as_array().context("results")?;
    ensure!(results.len() == round_trips.len(), "{} results for {} files", results.len(), round_trips.len());
    for ((path, target, out), r) in round_trips.iter().zip(results) {
        let what = format!("PyTorch loading {} into a {target} model", path.display());
        ensure!(r.get("error").is_none(), "{what}: {}", r["error"]);
        let got: Bits = serde_json::from_value(r["output"].clone())?;
        ensure!(&got == out, "{what}: output differs from Rust's");
        ensure!(
            r["entries"]["2.num_batches_tracked"]["dtype"] == "torch.int64",
            "{what}: num_batches_tracked is {}",
            r["entries"]["2.num_batches_tracked"]["dtype"]
        );
        if path.extension().is_some_and(|e| e == "pt") {
            ensure!(r["type"] == "OrderedDict", "{what}: torch.load gave a {}", r["type"]);
        }
    }
    eprintln!(
        "checkpoint parity: {compared} loads bit-equal to PyTorch, {refused} refused conversions, {} Rust-saved files loaded by PyTorch strict with equal outputs",
        round_trips.len()
    );
    ensure!(
        compared == 2 * (6 * 5 - 2 * 2 - 2 * 3) && refused == 2 * (2 * 2 + 3 * 2) + 1,
        "counted {compared} loads and {refused} refusals"
    );
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

fn hex(t: &Tensor) -> Result<String> {
    let t = t.f_contiguous()?;
    let mut bytes = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
    if t.numel() > 0 {
        t.f_copy_data_u8(&mut bytes, t.numel())?;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn describe(t: &Tensor) -> Result<Value> {
    Ok(json!({"dtype": norm_tch::checkpoint::dtype_name(t.kind()), "shape": t.size(), "hex": hex(t)?}))
}

#[test]
fn storage_layouts_dtypes_and_odd_files() -> Result<()> {
    let Some(python) = python_or_skip("read torch.save's storage layouts and dtypes")? else { return Ok(()) };
    let dir = fresh_dir("checkpoint-views")?;
    run_python(&python, &["make", dir.to_str().context("utf-8 dir")?], None)?;
    let expected: Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json"))?)?;
    let want = expected["views"].as_object().context("views")?;
    // Strided views of one storage, offsets, every common dtype, empty and 0-dim, protocol 4.
    let views = StateDict::read(dir.join("views.pt"))?;
    let mut keys: Vec<&str> = views.keys().collect();
    keys.sort();
    ensure!(keys.iter().copied().eq(want.keys().map(String::as_str)), "views.pt keys {keys:?}");
    for (k, t) in views.entries() {
        ensure!(describe(t)? == want[k], "views.pt `{k}`: {} vs PyTorch {}", describe(t)?, want[k]);
    }
    // Written back by Rust, read by PyTorch: the same entries.
    let items: Vec<Value> = ["rust_views.pt", "rust_views.safetensors"]
        .iter()
        .map(|name| -> Result<Value> {
            let path = dir.join(name);
            views.write(&path)?;
            Ok(json!({"path": path, "model": "none"}))
        })
        .collect::<Result<_>>()?;
    let checked: Value = serde_json::from_slice(&run_python(&python, &["check"], Some(&json!({"items": items})))?)?;
    for (item, r) in items.iter().zip(checked["results"].as_array().context("results")?) {
        ensure!(r.get("error").is_none(), "PyTorch reading {}: {}", item["path"], r["error"]);
        for (k, v) in want {
            ensure!(&r["entries"][k] == v, "PyTorch reading {} `{k}`: {} vs {v}", item["path"], r["entries"][k]);
        }
    }
    // A checkpoint nesting the state dict, and a TorchScript archive: errors that say so.
    let e = StateDict::read(dir.join("nested.pt")).err().context("nested.pt read")?.to_string();
    ensure!(e.contains("nested.pt") && e.contains("`model`"), "{e}");
    let e = StateDict::read(dir.join("scripted.pt")).err().context("scripted.pt read")?.to_string();
    ensure!(e.contains("scripted.pt") && e.contains("TorchScript"), "{e}");
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

fn message(result: norm_tch::Result<norm_tch::checkpoint::LoadReport>) -> Result<String> {
    match result {
        Ok(r) => bail!("loaded ({r:?}) where an error was expected"),
        Err(e) => Ok(e.to_string()),
    }
}

#[test]
fn bad_checkpoints_name_the_problem_and_change_nothing() -> Result<()> {
    let dir = fresh_dir("checkpoint-bad")?;
    // A good checkpoint of the weight-norm-hooks model, written by Rust.
    let source = Model::new("wn_hooks")?;
    let good = dir.join("good.pt");
    save_state_dict(&source.vs, &good)?;
    let entries = StateDict::read(&good)?.into_entries();
    type Edit<'a> = &'a dyn Fn(&mut Vec<(String, Tensor)>) -> Result<()>;
    let write = |name: &str, f: Edit| -> Result<PathBuf> {
        let mut e: Vec<(String, Tensor)> = entries.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
        f(&mut e)?;
        let path = dir.join(name);
        StateDict::new(e)?.write(&path)?;
        Ok(path)
    };
    let mut cases: Vec<(PathBuf, Vec<String>, Scheme)> = Vec::new();
    let missing = write("missing.pt", &|e| {
        e.retain(|(k, _)| k != "3.bias");
        Ok(())
    })?;
    cases.push((missing, vec!["3.bias".into(), "missing".into()], Scheme::WeightNormHooks));
    let extra = write("extra.safetensors", &|e| {
        e.push(("3.extra".into(), Tensor::f_zeros([2], (Kind::Float, Device::Cpu))?));
        Ok(())
    })?;
    cases.push((extra, vec!["3.extra".into(), "unexpected".into()], Scheme::WeightNormHooks));
    let shape = write("shape.pt", &|e| {
        for (k, t) in e.iter_mut() {
            if k == "3.bias" {
                *t = Tensor::f_zeros([7], (Kind::Float, Device::Cpu))?;
            }
        }
        Ok(())
    })?;
    cases.push((shape.clone(), vec!["`3.bias`".into(), "[6]".into(), "[7]".into()], Scheme::WeightNormHooks));
    // In a converted layer, the message names both the model's key and the file's.
    let conv_shape = write("conv_shape.pt", &|e| {
        for (k, t) in e.iter_mut() {
            if k == "0.weight_g" {
                *t = Tensor::f_ones([4, 3, 1], (Kind::Float, Device::Cpu))?;
            }
        }
        Ok(())
    })?;
    cases.push((
        conv_shape,
        vec![
            "0.parametrizations.weight.original0".into(),
            "(converted from `0.weight_g`)".into(),
            "[4, 1, 1]".into(),
            "[4, 3, 1]".into(),
        ],
        Scheme::WeightNormParametrizations,
    ));
    let dtype = write("dtype.pt", &|e| {
        for (k, t) in e.iter_mut() {
            if k == "3.bias" {
                *t = t.f_to_kind(Kind::Double)?;
            }
        }
        Ok(())
    })?;
    cases.push((
        dtype,
        vec!["`3.bias`".into(), "torch.float64".into(), "torch.float32".into()],
        Scheme::WeightNormHooks,
    ));
    let bytes = std::fs::read(&good)?;
    let truncated = dir.join("truncated.pt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
    cases.push((truncated.clone(), vec![truncated.display().to_string(), "truncated".into()], Scheme::WeightNormHooks));
    let st = write("whole.safetensors", &|_| Ok(()))?;
    let st_bytes = std::fs::read(&st)?;
    let st_truncated = dir.join("truncated.safetensors");
    std::fs::write(&st_truncated, &st_bytes[..st_bytes.len() - 10])?;
    cases.push((st_truncated.clone(), vec![st_truncated.display().to_string()], Scheme::WeightNormHooks));
    let text = dir.join("notes.pt");
    std::fs::write(&text, "these are not the weights you are looking for\n")?;
    cases.push((text.clone(), vec![text.display().to_string(), "neither".into()], Scheme::WeightNormHooks));
    let empty = dir.join("empty.safetensors");
    std::fs::write(&empty, "")?;
    cases.push((empty.clone(), vec![empty.display().to_string()], Scheme::WeightNormHooks));
    let absent = dir.join("absent.pt");
    cases.push((absent.clone(), vec![absent.display().to_string()], Scheme::WeightNormHooks));

    for (path, needles, scheme) in &cases {
        let target = if *scheme == Scheme::WeightNormParametrizations { "wn_param" } else { "wn_hooks" };
        let mut model = Model::new(target)?;
        let before = model.snapshot()?;
        let msg = message(load_checkpoint(&mut model.vs, path, &LoadOptions::default()))?;
        eprintln!("{}: {msg}", path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()));
        for needle in needles {
            ensure!(
                msg.contains(needle.as_str()),
                "loading {}: the error does not mention {needle:?}: {msg}",
                path.display()
            );
        }
        model.unchanged_since(&before).with_context(|| format!("after failing to load {}", path.display()))?;
    }
    // Non-strict: missing and unexpected keys are reported, the rest loads; shapes still fail.
    let mut model = Model::new("wn_hooks")?;
    let sd = StateDict::read(dir.join("extra.safetensors"))?;
    let report = load_state_dict(&mut model.vs, &sd, &LoadOptions { strict: false, ..Default::default() })?;
    ensure!(report.unexpected_keys == ["3.extra"] && report.missing_keys.is_empty(), "{report:?}");
    let before = model.snapshot()?;
    let msg = message(load_checkpoint(&mut model.vs, &shape, &LoadOptions { strict: false, ..Default::default() }))?;
    ensure!(msg.contains("3.bias"), "{msg}");
    model.unchanged_since(&before)?;
    eprintln!(
        "bad checkpoints: {} cases refused with the key/shape/file named, the VarStore unchanged",
        cases.len() + 1
    );
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

#[test]
fn rust_round_trip_and_scheme_conversions_without_pytorch() -> Result<()> {
    // Save a model of every scheme and load it into a model of every compatible scheme:
    // the outputs agree bit for bit where the conversion is exact.
    norm_tch::backend::set_num_threads(1)?;
    let dir = fresh_dir("checkpoint-rust")?;
    let x = {
        let _g = norm_tch::backend::lock_global_generator();
        tch::manual_seed(3);
        Tensor::f_randn([2, 3, 8], (Kind::Float, Device::Cpu))?
    };
    for source in TARGETS {
        let model = Model::new(source)?;
        let out = bits_of(&model.forward(&x)?)?;
        for ext in ["pt", "safetensors"] {
            let path = dir.join(format!("{source}.{ext}"));
            save_state_dict(&model.vs, &path)?;
            let read = StateDict::read(&path)?;
            ensure!(
                read.get("2.num_batches_tracked").is_some_and(|t| t.kind() == Kind::Int64),
                "{source}.{ext}: num_batches_tracked lost its dtype"
            );
            for target in TARGETS {
                let Some(_) = expected_output(source, target) else { continue };
                if source == "folded" && target != "folded" {
                    continue;
                }
                let mut into = Model::new(target)?;
                load_checkpoint(&mut into.vs, &path, &LoadOptions::default())
                    .with_context(|| format!("{source}.{ext} into {target}"))?;
                ensure!(bits_of(&into.forward(&x)?)? == out, "{source}.{ext} into {target}: output differs");
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

/// A CPU model's checkpoint (weight norm hooks) loaded into a `device` model under the
/// parametrization API (the conversion runs on the CPU, the values land on `device`), and
/// saved from there: the same bytes throughout.
fn load_and_save_on(device: Device, name: &str) -> Result<()> {
    let dir = fresh_dir(name)?;
    let source = Model::new("wn_hooks")?;
    let path = dir.join("cpu.pt");
    save_state_dict(&source.vs, &path)?;
    let mut vs = VarStore::new(device);
    let lin = {
        let _g = norm_tch::backend::lock_global_generator();
        linear(&(vs.root() / "3"), 7, 6, LinearConfig::default())?
    };
    let _lin = parametrizations::weight_norm(&vs, lin, None)?;
    let report =
        load_state_dict(&mut vs, &StateDict::read(&path)?, &LoadOptions { strict: false, ..Default::default() })?;
    ensure!(
        report.conversions.len() == 1 && report.missing_keys.is_empty() && report.unexpected_keys.len() == 11,
        "{report:?}"
    );
    let want = StateDict::read(&path)?;
    for (ours, theirs) in [
        ("3.parametrizations.weight.original0", "3.weight_g"),
        ("3.parametrizations.weight.original1", "3.weight_v"),
        ("3.bias", "3.bias"),
    ] {
        let var = vs.variables()[ours].shallow_clone();
        ensure!(var.device() == device, "`{ours}` is on {:?}", var.device());
        ensure!(
            hex(&var.f_to_device(Device::Cpu)?)? == hex(want.get(theirs).context("source entry")?)?,
            "`{ours}` differs from the checkpoint's `{theirs}`"
        );
    }
    // Saved from `device`: the same bytes again.
    let back = dir.join("back.safetensors");
    save_state_dict(&vs, &back)?;
    let read = StateDict::read(&back)?;
    ensure!(
        hex(read.get("3.parametrizations.weight.original1").context("v")?)?
            == hex(want.get("3.weight_v").context("v")?)?,
        "v changed through {device:?}"
    );
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

#[test]
fn loads_and_saves_through_the_cpu_on_any_device() -> Result<()> {
    load_and_save_on(Device::Cpu, "checkpoint-device-cpu")?;
    match cuda_or_skip("loading into and saving from a CUDA VarStore") {
        Some(cuda) => load_and_save_on(cuda, "checkpoint-device-cuda"),
        None => Ok(()),
    }
}
