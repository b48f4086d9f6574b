// What tch cannot do, in a few lines of C++ against libtorch's headers (built by build.rs).
#include <ATen/Context.h>
#include <ATen/ops/_empty_affine_quantized.h>
#include <c10/util/Exception.h>
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>

// libtorch's quantized engine, which tch can only set to FBGEMM or QNNPACK.
// Codes: 1 fbgemm, 2 qnnpack, 3 onednn, 4 x86 (at::QEngine's values).
extern "C" int gst_torch_qengine_supported(int code) {
  const auto& engines = at::globalContext().supportedQEngines();
  return std::find(engines.begin(), engines.end(), static_cast<at::QEngine>(code)) != engines.end();
}

extern "C" int gst_torch_set_qengine(int code) {
  if (!gst_torch_qengine_supported(code)) return -1;
  try {
    at::globalContext().setQEngine(static_cast<at::QEngine>(code));
    return 0;
  } catch (...) {
    return -2;
  }
}

extern "C" int gst_torch_qengine() {
  return static_cast<int>(at::globalContext().qEngine());
}

// libtorch's warnings (TORCH_WARN), which it prints to stderr by default. Every int8 model's
// forward quantizes its input with torch.quantize_per_tensor, which libtorch 2.13 warns is
// deprecated: that one known line is dropped; every other warning goes to the callback (the
// GStreamer debug log).
namespace {
using WarningCallback = void (*)(const char* message, const char* file, uint32_t line);

constexpr const char* kKnownDeprecation =
    "torch.quantize_per_tensor, torch.quantize_per_channel and other quantized tensor creation "
    "functions";

class Router : public c10::WarningHandler {
 public:
  explicit Router(WarningCallback callback) : callback_(callback) {}
  void process(const c10::Warning& warning) override {
    const std::string& message = warning.msg();
    if (message.rfind(kKnownDeprecation, 0) == 0) return;
    const auto& where = warning.source_location();
    callback_(message.c_str(), where.file ? where.file : "", where.line);
  }

 private:
  WarningCallback callback_;
};
}  // namespace

// libtorch keeps the handler per thread: call this on every thread that loads or runs a model.
// The handler lives as long as the thread. Warnings raised on libtorch's own worker threads (its
// OpenMP pool) still go to stderr; the known deprecation is warned once per process, and is
// raised here, under this thread's handler, before any model can raise it on a worker (loading
// a model with the x86 engine creates quantized tensors in parallel).
extern "C" void gst_torch_route_warnings(WarningCallback callback) {
  thread_local Router router(callback);
  c10::WarningUtils::set_warning_handler(&router);
  static std::once_flag known_deprecation_raised;
  std::call_once(known_deprecation_raised, [] {
    try {
      at::_empty_affine_quantized({1}, at::TensorOptions().dtype(at::kQUInt8), 1.0, 0);
    } catch (...) {
    }
  });
}
