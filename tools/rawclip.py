"""A video file's frames as raw video, decoded by GStreamer's gst-launch-1.0: the one decode
recipe of the benchmark (tools/bench/), the accuracy set (tools/accuracy.py) and the x86 model
export's calibration (tools/export_model.py). Standard library only, so that Debian's python3
and the venv's both import it."""

import os
import subprocess
import tempfile


def decode(path: str, fmt: str, width: int, height: int) -> bytes:
    """Every frame of `path` as raw video of GStreamer format `fmt` (e.g. RGB, BGRx), `width` x
    `height`, back to back. Raises RuntimeError with gst-launch-1.0's message if it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "frames.raw")
        cmd = ["gst-launch-1.0", "-q", "filesrc", f"location={path}", "!", "decodebin", "!", "videoconvert",
               "!", "videoscale", "!", f"video/x-raw,format={fmt},width={width},height={height}", "!",
               "filesink", f"location={raw}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError:
            raise RuntimeError("gst-launch-1.0 not found (tools/setup.sh deps installs it)") from None
        if done.returncode != 0:
            raise RuntimeError(f"decoding {path} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
        with open(raw, "rb") as f:
            return f.read()
