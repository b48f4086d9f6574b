//! What the integration tests share: plugin set-up and the paths `make test` prepares.
//!
//! `GST_TORCH_MODEL` (default: the path `make model` writes), `GST_TORCH_TEST_MODELS` (from
//! `tools/make_test_models.py`, default `target/test-models`), `GST_TORCH_SHARED` (default
//! `../shared`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};

/// Initialises GStreamer and registers the plugin, once per test binary.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gsttorch::plugin_register_static().expect("registering the torch plugin");
    });
}

/// For tests that must run one at a time: RSS, thread counts and libtorch's engine are
/// process-wide.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    init();
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn env_path(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(default)
}

/// The exported int8 MobileNetV2.
pub fn model() -> String {
    let p = env_path("GST_TORCH_MODEL", || {
        gst::glib::user_data_dir().join("gst-torch/mobilenet_v2_quantized.pt")
    });
    assert!(
        p.is_file(),
        "model {} missing: run `make test`",
        p.display()
    );
    p.to_string_lossy().into_owned()
}

/// A file made by `tools/make_test_models.py`.
pub fn test_model(name: &str) -> String {
    let dir = env_path("GST_TORCH_TEST_MODELS", || {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-models")
    });
    let p = dir.join(name);
    assert!(p.exists(), "{} missing: run `make test`", p.display());
    p.to_string_lossy().into_owned()
}

/// A photo or clip of `../shared/media`.
pub fn media(name: &str) -> String {
    let dir = env_path("GST_TORCH_SHARED", || {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
    });
    let p = dir.join("media").join(name);
    assert!(p.is_file(), "{} missing", p.display());
    p.to_string_lossy().into_owned()
}

/// ImageNet classes of the shared photos and of the demo clip's three parts.
pub const CAT: std::ops::RangeInclusive<u32> = 281..=285;
pub const ESPRESSO: u32 = 967;
pub const ORANGE: u32 = 950;

/// A path in cargo's scratch directory for integration tests (under target/), in `dir`.
pub fn scratch(dir: &str, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// This process's threads whose name starts with `prefix` (Linux keeps 15 bytes of a name; a
/// thread inherits its creator's, so OpenMP workers of the model thread count as it).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}
