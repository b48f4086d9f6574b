#include <ATen/Context.h>
#include <algorithm>

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
