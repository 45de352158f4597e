//! norm-core's conformance suite on the libtorch backend, on every device present.

mod cpu {
    norm_core::conformance_tests!(norm_tch::TchBackend, Some(tch::Device::Cpu));
}

mod cuda {
    // Skips (with a message) on machines without a CUDA device.
    norm_core::conformance_tests!(norm_tch::TchBackend, norm_tch::backend::cuda_device(0));
}
