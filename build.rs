//! Plugin version info, and an rpath to libtorch's lib dir so the plugin (and the test binaries)
//! load libtorch from the Python venv without LD_LIBRARY_PATH. torch-sys links libtorch but
//! exports nothing a dependent can read, so this finds the directory the same way it does:
//! `$LIBTORCH/lib`, or with `LIBTORCH_USE_PYTORCH=1` the `torch` package of the Python on PATH
//! (`python` inside a venv, `python3` otherwise).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    for var in [
        "LIBTORCH",
        "LIBTORCH_LIB",
        "LIBTORCH_USE_PYTORCH",
        "VIRTUAL_ENV",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if let Ok(lib) = env::var("LIBTORCH_LIB") {
        return Some(PathBuf::from(lib).join("lib"));
    }
    if let Ok(root) = env::var("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    if env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        let python = if env::var_os("VIRTUAL_ENV").is_some() {
            "python"
        } else {
            "python3"
        };
        let out = Command::new(python)
            .args([
                "-c",
                "import os, torch; print(os.path.dirname(torch.__file__))",
            ])
            .output()
            .ok()?;
        if out.status.success() {
            let dir = String::from_utf8(out.stdout).ok()?;
            return Some(PathBuf::from(dir.trim()).join("lib"));
        }
    }
    None
}

fn main() {
    gst_plugin_version_helper::info();
    match torch_lib_dir() {
        Some(dir) => println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display()),
        None => println!(
            "cargo:warning=libtorch not found (set LIBTORCH or LIBTORCH_USE_PYTORCH=1): \
             the plugin will need LD_LIBRARY_PATH to load"
        ),
    }
}
