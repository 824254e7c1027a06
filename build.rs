//! Compiles the dashboard (`src/dashboard/assets/`) into the binary: writes
//! `$OUT_DIR/dashboard_assets.rs`, one `(file name, bytes)` entry per file,
//! so a new asset needs no list kept by hand.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dashboard/assets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("&[\n");
    for name in &names {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        // Resolved when the crate compiles, against its own manifest
        // directory: a build directory shared by two checkouts (CI's clone
        // and a working tree) never embeds the other checkout's files.
        writeln!(
            out,
            "    ({name:?}, include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/src/dashboard/assets/{name}\")) as &[u8]),"
        )
        .expect("string");
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("dashboard_assets.rs");
    std::fs::write(dest, out).expect("write dashboard_assets.rs");
}
