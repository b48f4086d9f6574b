#!/usr/bin/env bash
# The plugin on Debian 13 (GStreamer 1.26): `make test-debian13` runs this inside
# `tools/rootfs.sh debian13` (Debian 13 amd64), where the plugin is built with the host's Rust and
# libtorch (into target/debian13, with `--features analytics` when Cargo.toml has it) and installed
# per user with the default model, as the README's set-up installs them:
#   - the installed plugin loads with plain gst-inspect-1.0 (no GST_PLUGIN_PATH/LD_LIBRARY_PATH);
#   - tests/classify.rs (the shared photos, the demo clip, the element's behaviour);
#   - tests/analytics.rs, where it exists (the GstAnalytics meta);
#   - pipelines/analytics_reader.py --check, where it exists (the meta read from Python).
# Prints the GStreamer it runs against. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
unset GST_PLUGIN_PATH LD_LIBRARY_PATH
export GST_TORCH_MODEL=${GST_TORCH_MODEL:-$HOME/.local/share/gst-torch/mobilenet_v2_quantized.pt}
export GST_TORCH_TEST_MODELS=${GST_TORCH_TEST_MODELS:-$PWD/target/test-models}
export GST_TORCH_SHARED=${GST_TORCH_SHARED:-$(cd .. && pwd)/shared}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
grep -qs '^VERSION_CODENAME=trixie' /etc/os-release ||
  { echo "not on Debian 13 (run through tools/rootfs.sh debian13)"; exit 1; }

features=()
sed -n '/^\[features\]/,/^\[/p' Cargo.toml | grep -q '^analytics *=' && features=(--features analytics)

check() { # name, then a command that must succeed; its output's last lines are shown
  local name=$1 t0=$SECONDS
  shift
  if "$@" >"$out/log" 2>&1; then
    passed=$((passed + 1)); echo "ok   - $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); echo "FAIL - $name ($((SECONDS - t0)) s)"
  fi
  sed 's/^/       /' "$out/log" | tail -"${TAIL:-20}"
}

plugin_loads() {
  gst-inspect-1.0 torchclassify >"$out/inspect" || { cat "$out/inspect"; return 1; }
  grep -E 'Filename|Version' "$out/inspect"
  gst-inspect-1.0 torchoverlay >/dev/null
}

# cargo's summary lines ("test result: …", failures) and the last lines of its output.
cargo_test() { # test file name (tests/NAME.rs)
  cargo test --release --quiet "${features[@]}" --test "$1" >"$out/cargo" 2>&1
  local rc=$?
  grep -E '^test result:|^    [a-z_:]+$|panicked at' "$out/cargo"
  [ "$rc" -eq 0 ] || tail -30 "$out/cargo"
  return "$rc"
}

echo "Debian $(cat /etc/debian_version); GStreamer $(gst-launch-1.0 --version | sed -n 's/^GStreamer \(.*\)/\1/p')" \
  "(gstreamer-1.0 $(pkg-config --modversion gstreamer-1.0)," \
  "gstreamer-analytics-1.0 $(pkg-config --modversion gstreamer-analytics-1.0 2>/dev/null || echo none));" \
  "cargo features: ${features[*]:-none}"
check "the installed plugin loads (gst-inspect-1.0, rpath to the venv's libtorch)" plugin_loads
check "cargo test --test classify (photos, clip, the element)" cargo_test classify
if [ -f tests/analytics.rs ]; then
  check "cargo test --test analytics (GstAnalytics meta)" cargo_test analytics
else
  echo "skip - tests/analytics.rs: not in this checkout"
fi
if [ -f pipelines/analytics_reader.py ]; then
  check "pipelines/analytics_reader.py --check (the meta from Python)" timeout 900 python3 pipelines/analytics_reader.py --check
else
  echo "skip - pipelines/analytics_reader.py: not in this checkout"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
