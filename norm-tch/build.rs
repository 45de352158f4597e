//! Compiles the C++ files in `csrc/` against the same libtorch headers torch-sys uses:
//! `$LIBTORCH` if set, else the torch package of the `python` first on PATH
//! (`LIBTORCH_USE_PYTORCH=1`, as torch-sys).
//!
//! It also keeps `libtorch_cuda.so` linked when the libtorch has it: torch-sys asks for
//! `-ltorch_cuda`, but the linker's `--as-needed` drops it (nothing calls into it by
//! symbol; it only registers CUDA hooks from its static initializers), and then
//! `tch::Cuda::is_available()` is false even on a GPU machine. See [`link_torch_cuda`].
use std::path::PathBuf;
use std::process::Command;

/// The C++ sources, one idea each; `guarded.h` is their shared error handling, `adam_hyper.h`
/// the Adam files' shared hyper-parameter struct, `adam_scalar_lambdas.h` (included by
/// `adam.cpp`) Adam's update of tiny parameters in ATen's scalar-lambda arithmetic,
/// `tiny_kernels.h` (included by `weight_norm_linear.cpp`) the tiny layer's other kernels,
/// `replay_probe.h` what those two replays share.
const SOURCES: [&str; 8] = [
    "aten_ops.cpp",
    "adam.cpp",
    "adam_foreach.cpp",
    "adam_fused.cpp",
    "weight_norm_out.cpp",
    "mv_reused.cpp",
    "div_recycled.cpp",
    "weight_norm_linear.cpp",
];

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let (root, abi) = match std::env::var_os("LIBTORCH") {
        Some(dir) => (PathBuf::from(dir), std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into())),
        None => {
            let python = std::env::var("PYTHON").unwrap_or_else(|_| "python".into());
            let script =
                "import os, torch; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))";
            let out = Command::new(&python)
                .args(["-c", script])
                .output()
                .unwrap_or_else(|e| panic!("norm-tch: cannot run `{python}` to locate torch ({e}); set LIBTORCH or put the venv's python first on PATH"));
            assert!(
                out.status.success(),
                "norm-tch: `{python}` could not import torch: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).expect("utf-8 from python");
            let mut lines = text.lines();
            let root = PathBuf::from(lines.next().expect("torch path"));
            let abi = lines.next().expect("cxx11 abi").trim().to_string();
            (root, abi)
        }
    };
    link_torch_cuda(&root.join("lib"));
    let include = root.join("include");
    // For dependents' build scripts (`links = "norm_aten_ops"`): DEP_NORM_ATEN_OPS_INCLUDE,
    // _CXX11_ABI and _CSRC, so norm-bench compiles its C++ the same way.
    println!("cargo:include={}", include.display());
    // And this crate's csrc/ (guarded.h: the shared error convention).
    println!("cargo:csrc={}", std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("csrc").display());
    println!("cargo:cxx11_abi={abi}");
    cc::Build::new()
        .cpp(true)
        .files(SOURCES.iter().map(|f| format!("csrc/{f}")))
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-w")
        // adam_scalar_lambdas.h, tiny_kernels.h (replay_probe.h): `c + a * b` rounds twice,
        // fma() is explicit.
        .flag("-ffp-contract=off")
        .opt_level(2)
        .compile("norm_aten_ops");
}

/// When `lib/libtorch_cuda.so` exists: `-Wl,--no-as-needed -ltorch_cuda -Wl,--as-needed`
/// for this crate's own tests, examples, benches and doctests (`rustc-link-arg`), and
/// `DEP_NORM_ATEN_OPS_TORCH_CUDA_LIB` (the folder) for dependents' build scripts, which emit
/// the same arguments for theirs (`rustc-link-arg` does not reach a dependent's link).
/// A CPU-only libtorch gets nothing. torch-sys's `rustc-link-search` finds the library.
fn link_torch_cuda(lib: &std::path::Path) {
    if lib.is_dir() {
        println!("cargo:rerun-if-changed={}", lib.display());
    }
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:torch_cuda_lib={}", lib.display());
        for arg in ["-Wl,--no-as-needed", "-ltorch_cuda", "-Wl,--as-needed"] {
            println!("cargo:rustc-link-arg={arg}");
        }
    }
}
