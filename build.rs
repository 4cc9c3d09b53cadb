//! Compiles the gRPC API in `proto/` with tonic's codegen, using a vendored `protoc`.
use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded here; nothing else reads the environment.
    unsafe { env::set_var("PROTOC", protoc) };

    let mut protos: Vec<PathBuf> = std::fs::read_dir("proto/fluxcascade/v1")?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    protos.sort();

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .file_descriptor_set_path(out_dir.join("fluxcascade_descriptor.bin"))
        .compile_protos(&protos, &[PathBuf::from("proto"), protoc_bin_vendored::include_path()?])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
