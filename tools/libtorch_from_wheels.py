#!/usr/bin/env python3
"""The plugin's libtorch (C++ libraries and headers) out of PyPI's torch wheel, without its CUDA part.

    libtorch_from_wheels.py --output DIR TORCH_WHEEL [OTHER_WHEEL...]

`tools/setup.sh libtorch` runs this on aarch64 (a Raspberry Pi), where PyPI's torch 2.13.0 is a
CUDA build: installed whole it is 4.8 GB with its dependencies, and `pip install --no-deps` of the
wheel alone still writes 830 MB, half of it libtorch_cuda.so, which the plugin never loads. Writes
the layout torch-sys and build.rs take as LIBTORCH:

    DIR/lib/         from the torch wheel's torch/lib/: every shared library but the CUDA ones
                     and Python's (libtorch_cuda*.so, libc10_cuda.so, libcaffe2_nvrtc.so,
                     libtorch_nvshmem.so, libtorch_python.so, libshm.so); from the other wheels
                     (nvidia-cuda-runtime, nvidia-cuda-cupti) only the libraries the kept ones
                     name as NEEDED (libcudart.so.13, libcupti.so.13: libtorch_cpu.so of that
                     build is linked against them, though a CPU never calls them)
    DIR/include/     torch/include/ (compiling the plugin on the Pi, cross-compiling against it)
    DIR/build-version  the torch version (torch-sys checks it against the one tch wants)

libtorch.so is kept although it names libtorch_cuda.so: torch-sys links -ltorch, and the linker
drops it (--as-needed; nothing of it is used), so the plugin needs only libtorch_cpu.so and
libc10.so at run time. Fails, writing nothing, when a kept library needs one that is neither kept
nor a system library (glibc, libstdc++, libgcc_s, zlib). Standard library only.
"""

import argparse
import re
import shutil
import struct
import sys
import zipfile
from pathlib import Path

# torch/lib files left out: the CUDA build's GPU libraries and Python's extension support.
DROP = re.compile(r"^lib(torch_cuda.*|c10_cuda|caffe2_nvrtc|torch_nvshmem|torch_python|shm)\.so")
# What the system provides (Debian's libc6, libstdc++6, libgcc-s1, zlib1g).
SYSTEM = re.compile(r"^(ld-linux-.*|lib(c|m|dl|rt|pthread|util|stdc\+\+|gcc_s|z)\.so(\.\d+)*)$")
SHARED_LIB = re.compile(r"^lib[^/]*\.so(\.\d+)*$")


def needed(data: bytes) -> list:
    """The DT_NEEDED names of a 64-bit little-endian ELF shared library (what aarch64 wheels hold)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[link]
        for pos in range(offset, offset + size, entsize):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                start = strtab[4] + value
                out.append(data[start:data.index(b"\0", start)].decode())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, required=True, help="directory to write (must not exist)")
    ap.add_argument("wheels", type=Path, nargs="+", help="the torch wheel and the wheels it links against")
    args = ap.parse_args()
    if args.output.exists():
        print(f"{args.output} exists", file=sys.stderr)
        return 1

    torch_wheels = [w for w in args.wheels if w.name.startswith("torch-")]
    if len(torch_wheels) != 1:
        print("give exactly one torch wheel", file=sys.stderr)
        return 1
    torch_wheel = torch_wheels[0]
    version = torch_wheel.name.split("-")[1]

    libs = {}  # file name -> (wheel, member)
    headers = []
    with zipfile.ZipFile(torch_wheel) as z:
        for member in z.namelist():
            if member.startswith("torch/include/") and not member.endswith("/"):
                headers.append(member)
            elif member.startswith("torch/lib/") and SHARED_LIB.match(member[len("torch/lib/"):]):
                name = member[len("torch/lib/"):]
                if not DROP.match(name):
                    libs[name] = (torch_wheel, member)
    # Libraries the other wheels offer, by file name.
    offered = {}
    for wheel in args.wheels:
        if wheel == torch_wheel:
            continue
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                name = member.rsplit("/", 1)[-1]
                if "/lib/" in member and SHARED_LIB.match(name):
                    offered.setdefault(name, (wheel, member))

    # Close over NEEDED: take what the kept libraries need from the other wheels.
    missing, todo, seen = [], sorted(libs), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        wheel, member = libs[name]
        with zipfile.ZipFile(wheel) as z:
            deps = needed(z.read(member))
        for dep in deps:
            if dep in libs or SYSTEM.match(dep):
                continue
            if dep in offered:
                libs[dep] = offered[dep]
                todo.append(dep)
            elif not (name == "libtorch.so" and DROP.match(dep)):  # libtorch.so -> libtorch_cuda.so
                missing.append(f"{name} needs {dep}")
    if missing:
        print("not in the wheels given: " + "; ".join(missing), file=sys.stderr)
        return 1

    partial = args.output.with_name(args.output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "lib").mkdir(parents=True)
    for name, (wheel, member) in sorted(libs.items()):
        with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(partial / "lib" / name, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        (partial / "lib" / name).chmod(0o755)
    with zipfile.ZipFile(torch_wheel) as z:
        for member in headers:
            target = partial / member[len("torch/"):]
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    (partial / "build-version").write_text(version + "\n")
    partial.rename(args.output)
    size = sum(p.stat().st_size for p in args.output.rglob("*") if p.is_file())
    print(f"libtorch {version}: {len(libs)} libraries, {len(headers)} headers, {size / 2**20:.0f} MB "
          f"in {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
