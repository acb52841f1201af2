//! Compiles `proto/pantau/v1/*.proto` with protox (pure Rust, no system
//! `protoc`) and writes the encoded descriptor set for gRPC reflection.
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The manifest directory of this build, read when the script runs: a
    // script compiled in another checkout (a copied target directory) must
    // not read that checkout's protos.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let dir = root.join("pantau/v1");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .map(|p| format!("pantau/v1/{}", p.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    files.sort();
    let fds = protox::compile(&files, [&root])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("pantau_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Carries channel secrets: its Debug is written by hand (lib.rs).
        .skip_debug([".pantau.v1.NotificationChannelRef"])
        .compile_fds(fds)?;
    Ok(())
}
