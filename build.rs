//! Plugin version info; an rpath to libtorch's lib dir so the plugin (and the test binaries)
//! load libtorch from the Python venv without LD_LIBRARY_PATH; and src/libtorch.cpp, compiled
//! against libtorch's headers. torch-sys links libtorch but exports nothing a dependent can read,
//! so this finds the directory the same way it does:
//! `$LIBTORCH/lib`, or with `LIBTORCH_USE_PYTORCH=1` the `torch` package of the Python on PATH
//! (`python` inside a venv, `python3` otherwise). `GST_TORCH_RPATH` replaces that rpath (a
//! cross-build's libtorch is not where the plugin will run: `make aarch64` sets one relative to
//! the installed plugin, `$ORIGIN/…`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// libtorch's directory (with `lib/` and `include/`).
fn torch_dir() -> Option<PathBuf> {
    for var in [
        "LIBTORCH",
        "LIBTORCH_LIB",
        "LIBTORCH_USE_PYTORCH",
        "VIRTUAL_ENV",
        "PATH",
        "GST_TORCH_RPATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if let Ok(lib) = env::var("LIBTORCH_LIB") {
        return Some(PathBuf::from(lib));
    }
    if let Ok(root) = env::var("LIBTORCH") {
        return Some(PathBuf::from(root));
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
            return Some(PathBuf::from(dir.trim()));
        }
    }
    None
}

fn main() {
    gst_plugin_version_helper::info();
    println!("cargo:rerun-if-changed=src/libtorch.cpp");
    match torch_dir() {
        Some(dir) => {
            let rpath = env::var("GST_TORCH_RPATH")
                .unwrap_or_else(|_| dir.join("lib").display().to_string());
            println!("cargo:rustc-link-arg=-Wl,-rpath,{rpath}");
            // A few lines of C++ for what tch cannot do: choose the `x86` quantized engine, route
            // libtorch's warnings.
            cc::Build::new()
                .cpp(true)
                .std("c++20")
                .file("src/libtorch.cpp")
                .include(dir.join("include"))
                .include(dir.join("include/torch/csrc/api/include"))
                .define("_GLIBCXX_USE_CXX11_ABI", "1")
                .warnings(false)
                .compile("gsttorch_libtorch");
        }
        None => panic!(
            "libtorch not found: set LIBTORCH, or LIBTORCH_USE_PYTORCH=1 with a Python that has \
             torch first on PATH (`make build` does this)"
        ),
    }
}
