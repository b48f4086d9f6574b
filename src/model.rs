//! The one place that owns libtorch: the quantized engine and thread count, loading a
//! TorchScript module, and [`TorchModule`], the core's [`Forward`] for the model thread
//! ([`torchcore::batch`]), which makes it on that thread and runs every forward there.

use std::ffi::{CStr, c_char};
use std::path::Path;
use std::sync::LazyLock;
use tch::{CModule, Device, IValue, Kind, Tensor};
use torchcore::batch::{Forward, ForwardError, Made, Outputs, Packing};
use torchcore::forward::message_text;
use torchcore::settings::Engine;

// src/libtorch.cpp: tch can only set FBGEMM and QNNPACK (codes are at::QEngine's values), and
// has no hook for libtorch's warnings.
unsafe extern "C" {
    fn gst_torch_qengine_supported(code: i32) -> i32;
    fn gst_torch_set_qengine(code: i32) -> i32;
    fn gst_torch_qengine() -> i32;
    fn gst_torch_route_warnings(callback: unsafe extern "C" fn(*const c_char, *const c_char, u32));
}

/// The debug category of libtorch's own warnings (`GST_DEBUG=libtorch:2` shows them).
static LIBTORCH_CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "libtorch",
        gst::DebugColorFlags::empty(),
        Some("Warnings from libtorch"),
    )
});

/// Where src/libtorch.cpp sends libtorch's warnings (all but the known deprecation of
/// `torch.quantize_per_tensor`, which every int8 model's forward would print).
unsafe extern "C" fn on_libtorch_warning(message: *const c_char, file: *const c_char, line: u32) {
    let text = |p: *const c_char| {
        if p.is_null() {
            std::borrow::Cow::Borrowed("")
        } else {
            // SAFETY: libtorch passes NUL-terminated strings that live for this call.
            unsafe { CStr::from_ptr(p) }.to_string_lossy()
        }
    };
    gst::warning!(LIBTORCH_CAT, "{} ({}:{line})", text(message), text(file));
}

/// Sends this thread's libtorch warnings to the GStreamer log instead of stderr. libtorch keeps
/// its warning handler per thread: call it on each thread that loads or runs a model.
pub fn route_libtorch_warnings() {
    // SAFETY: installs a handler object that lives as long as the thread; the callback is a
    // plain function that only reads its arguments.
    unsafe { gst_torch_route_warnings(on_libtorch_warning) };
}

const QENGINES: [(i32, &str); 4] = [(1, "fbgemm"), (2, "qnnpack"), (3, "onednn"), (4, "x86")];

/// The quantized engine libtorch uses now.
pub fn current_engine() -> &'static str {
    // SAFETY: reads libtorch's global context; no arguments.
    let code = unsafe { gst_torch_qengine() };
    QENGINES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("none", |(_, name)| name)
}

/// The engines to try for `engine`, in order; `auto` means the platform's preferred ones (a
/// model's calibrated engine comes first, see [`open`]).
fn engine_codes(engine: Engine) -> &'static [i32] {
    match engine {
        Engine::Auto if cfg!(any(target_arch = "x86_64", target_arch = "x86")) => &[4, 1],
        Engine::Auto => &[2],
        Engine::Qnnpack => &[2],
        Engine::Fbgemm => &[1],
        Engine::X86 => &[4],
    }
}

fn check_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("no such file (run `make model` to export the default model)".into())
        }
        Err(e) => Err(format!("cannot read it: {e}")),
        Ok(m) if m.is_dir() => Err("it is a directory, not a TorchScript file".into()),
        Ok(m) if m.len() == 0 => Err("the file is empty, not a TorchScript file".into()),
        Ok(_) => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|e| format!("cannot read it: {e}")),
    }
}

/// libtorch's message without its C++ stack trace (see [`message_text`]).
fn torch_message(e: &tch::TchError) -> String {
    message_text(&e.to_string())
}

/// Sets the engine; the error says why not (libtorch then keeps the engine it has).
pub fn set_engine(engine: Engine) -> Result<(), String> {
    // libtorch for aarch64 lists x86 and fbgemm as supported, but quantized models then fail to
    // load (their prepacked weights need x86 kernels): refuse them off x86.
    if !cfg!(any(target_arch = "x86_64", target_arch = "x86"))
        && matches!(engine, Engine::X86 | Engine::Fbgemm)
    {
        return Err(format!(
            "quantized engine {engine:?} is for x86-64 CPUs, not {}",
            std::env::consts::ARCH
        ));
    }
    for &code in engine_codes(engine) {
        // SAFETY: plain calls into libtorch's global context with a valid at::QEngine value.
        if unsafe { gst_torch_qengine_supported(code) } == 1
            && unsafe { gst_torch_set_qengine(code) } == 0
        {
            return Ok(());
        }
    }
    Err(format!(
        "quantized engine {engine:?} is not available in this libtorch (it has {})",
        QENGINES
            .iter()
            // SAFETY: as above.
            .filter(|(c, _)| unsafe { gst_torch_qengine_supported(*c) } == 1)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The engine a model says it was calibrated for: `tools/export_model.py` gives every model a
/// method `gst_torch_engine()` returning "qnnpack", "x86" or "fbgemm" ("" for a float model).
/// None for a model without it (exported elsewhere, or before the method existed).
pub fn calibrated_engine(module: &CModule) -> Option<Engine> {
    match module.method_is::<IValue>("gst_torch_engine", &[]) {
        Ok(IValue::String(name)) => match name.as_str() {
            "qnnpack" => Some(Engine::Qnnpack),
            "x86" => Some(Engine::X86),
            "fbgemm" => Some(Engine::Fbgemm),
            _ => None,
        },
        _ => None,
    }
}

fn load_module(path: &Path) -> Result<CModule, String> {
    let mut module = CModule::load(path)
        .map_err(|e| format!("not a loadable TorchScript file: {}", torch_message(&e)))?;
    module.f_set_eval().map_err(|e| {
        format!(
            "cannot switch the model to eval mode: {}",
            torch_message(&e)
        )
    })?;
    Ok(module)
}

/// What loading a model takes.
#[derive(Debug, Clone)]
pub struct Open {
    pub path: std::path::PathBuf,
    pub engine: Engine,
    /// libtorch's intra-op threads; 0 keeps libtorch's default.
    pub num_threads: u32,
}

/// A loaded TorchScript module, made on the model thread and run only there (no gradients are
/// kept while it lives; libtorch's warnings go to the GStreamer log).
pub struct TorchModule {
    module: CModule,
    _no_grad: tch::NoGradGuard,
}

/// Loads the module as `open` says, on the calling thread (the model thread): sets the thread
/// count and the engine, and returns a warning if the engine asked for could not be set
/// (libtorch then keeps the engine it has) or changes the model's answers. The error says what
/// is wrong with the file (the caller names the property and path).
///
/// `engine=auto` runs a model under the engine it was calibrated for ([`calibrated_engine`]),
/// else the platform's fastest. Loading packs the weights for the engine set at that moment, so
/// a model whose calibration differs from the platform's engine is loaded again.
pub fn open(open: &Open) -> Result<Made<TorchModule>, String> {
    route_libtorch_warnings();
    check_file(&open.path)?;
    if open.num_threads > 0 {
        tch::set_num_threads(open.num_threads as i32);
    }
    let mut warning = set_engine(open.engine)
        .err()
        .map(|e| format!("{e}; using libtorch's current engine instead"));
    let mut module = load_module(&open.path)?;
    let calibrated = calibrated_engine(&module);
    match (open.engine, calibrated) {
        (Engine::Auto, Some(engine)) => {
            let before = current_engine();
            if set_engine(engine).is_ok() && current_engine() != before {
                module = load_module(&open.path)?;
            }
        }
        // Activations calibrated for qnnpack use the whole 8-bit range; the x86-64 kernels
        // (x86, fbgemm, onednn) expect 7 bits (reduce_range) and saturate on more.
        (_, Some(Engine::Qnnpack)) if current_engine() != "qnnpack" => {
            warning.get_or_insert(format!(
                "the model was calibrated for the qnnpack engine; under {} its answers differ \
                 (a few points of top-1 lower on hard inputs): engine=auto runs it under qnnpack, \
                 or export one for x86-64 with tools/export_model.py --engine x86",
                current_engine()
            ));
        }
        _ => {}
    }
    let module = TorchModule {
        module,
        _no_grad: tch::no_grad_guard(),
    };
    Ok((module, warning))
}

/// What a non-tensor output is, for messages.
fn ivalue_kind(v: &IValue) -> &'static str {
    match v {
        IValue::Tuple(_) => "a tuple",
        IValue::GenericList(_) | IValue::TensorList(_) => "a list",
        IValue::GenericDict(_) => "a dict",
        IValue::None => "None",
        IValue::String(_) => "a string",
        _ => "not a tensor",
    }
}

/// Copies a tensor's shape and values (as 32-bit floats) into `into`, reusing its memory.
fn copy_tensor(t: &Tensor, into: &mut torchcore::batch::Tensor) -> Result<(), ForwardError> {
    let failed = |e: tch::TchError| ForwardError::Failed(torch_message(&e));
    let converted;
    let t = if t.kind() == Kind::Float {
        t
    } else {
        converted = t.f_to_kind(Kind::Float).map_err(failed)?;
        &converted
    };
    let t = t.f_contiguous().map_err(failed)?;
    into.shape.clear();
    into.shape
        .extend(t.size().iter().map(|&d| d.max(0) as usize));
    let n = t.numel();
    into.data.resize(n, 0.0);
    t.f_copy_data(&mut into.data, n).map_err(failed)
}

/// Tensors of a tuple or list output, in order; None if one item is not a tensor.
fn tensors(items: &[IValue]) -> Option<Vec<&Tensor>> {
    items
        .iter()
        .map(|v| match v {
            IValue::Tensor(t) => Some(t),
            _ => None,
        })
        .collect()
}

impl Forward for TorchModule {
    fn forward(
        &mut self,
        input: &[f32],
        shape: [usize; 4],
        outputs: &mut Outputs,
    ) -> Result<(), ForwardError> {
        let failed = |e: tch::TchError| ForwardError::Failed(torch_message(&e));
        let dims = shape.map(|d| d as i64);
        if input.len() != shape.iter().product::<usize>() {
            return Err(ForwardError::Failed(format!(
                "an input of {} floats for shape {shape:?}",
                input.len()
            )));
        }
        // SAFETY: the tensor views `input`, which outlives it (the tensor is dropped at the end of
        // this function) and which nothing writes while the forward runs (libtorch only reads a
        // module's input).
        let tensor = unsafe {
            Tensor::f_from_blob(
                input.as_ptr() as *const u8,
                &dims,
                &[],
                Kind::Float,
                Device::Cpu,
            )
        }
        .map_err(failed)?;
        let out = self
            .module
            .forward_is(&[IValue::Tensor(tensor)])
            .map_err(failed)?;
        let (packing, list) = match &out {
            IValue::Tensor(t) => (Packing::Tensor, vec![t]),
            IValue::Tuple(items) => match tensors(items) {
                Some(list) => (Packing::Tuple, list),
                None => (
                    Packing::Other("a tuple of other values than tensors"),
                    vec![],
                ),
            },
            IValue::GenericList(items) => match tensors(items) {
                Some(list) => (Packing::List, list),
                None => (
                    Packing::Other("a list of other values than tensors"),
                    vec![],
                ),
            },
            IValue::TensorList(list) => (Packing::List, list.iter().collect()),
            other => (Packing::Other(ivalue_kind(other)), vec![]),
        };
        outputs.packing = packing;
        outputs
            .tensors
            .resize_with(list.len(), torchcore::batch::Tensor::default);
        for (t, into) in list.into_iter().zip(&mut outputs.tensors) {
            copy_tensor(t, into)?;
        }
        Ok(())
    }
}
