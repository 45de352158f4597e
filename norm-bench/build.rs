//! Compiles `csrc/seed_step_cpp.cpp`, the seed document's training step written directly
//! against libtorch (the report's `seed_loop_step_cpp` row), with the headers and ABI
//! norm-tch's build found and norm-tch's `guarded.h` (`DEP_NORM_ATEN_OPS_*`, from its
//! `links = "norm_aten_ops"`).
//!
//! It also keeps `libtorch_cuda.so` linked into this crate's binaries and tests, as
//! norm-tch's build does for its own (`DEP_NORM_ATEN_OPS_TORCH_CUDA_LIB`, set when the
//! libtorch has CUDA): without it the linker drops the library and libtorch sees no GPU.

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    if std::env::var_os("DEP_NORM_ATEN_OPS_TORCH_CUDA_LIB").is_some() {
        for arg in ["-Wl,--no-as-needed", "-ltorch_cuda", "-Wl,--as-needed"] {
            println!("cargo:rustc-link-arg={arg}");
        }
    }
    let include = std::env::var("DEP_NORM_ATEN_OPS_INCLUDE")
        .expect("norm-tch's build script exports the libtorch include folder");
    let abi = std::env::var("DEP_NORM_ATEN_OPS_CXX11_ABI").expect("norm-tch's build script exports the C++11 ABI flag");
    let include = std::path::PathBuf::from(include);
    let norm_tch_csrc =
        std::env::var("DEP_NORM_ATEN_OPS_CSRC").expect("norm-tch's build script exports its csrc folder");
    cc::Build::new()
        .cpp(true)
        .file("csrc/seed_step_cpp.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(norm_tch_csrc)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-w")
        .opt_level(2)
        .compile("norm_bench_seed_step_cpp");
}
