"""The compiled CPU kernels, and which path is in use.

Two kernels: the piecewise-linear activation (``csrc/pwl_cpu.cpp``, :func:`cpu_kernel`) and the InfoMax
bank's per-model work between its matrix products (``csrc/infomax_cpu.cpp``, :func:`infomax_kernel`);
and, opt-in, a float32 matrix product into a given output by oneDNN (``csrc/onednn_matmul.cpp``,
:func:`onednn_matmul`) for the InfoMax bank's products.
Each is compiled on first use with :func:`torch.utils.cpp_extension.load` (g++ and ninja; once, then
cached in ``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``), in a folder
named by a digest of its source, its flags, the compiler's version, and the versions of torch and
Python (:func:`build_folder`), and loaded only from there: two checkouts with different sources
never rebuild or load each other's kernels, and a build made for other sources is never picked up.
``ACTFN_KERNELS`` chooses the path for all of them:

* ``auto`` (default): the compiled kernels; where one cannot be built, a warning says why and the
  PyTorch path (the same math in eager tensor ops, slower) is used.
* ``require``: the compiled kernels or an error.
* ``off``: always the PyTorch path.

On CUDA tensors the activation takes ``csrc/pwl_cuda.cu`` (:func:`cuda_kernel`, built by nvcc once
per GPU architecture and cached in the same folder, launched through ctypes) under
the same three choices; a machine without nvcc warns once and takes the PyTorch path.
:func:`backend` says which path CPU tensors take, :func:`cuda_backend` which path CUDA tensors take.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import torch

BACKENDS = ("auto", "require", "off")
SOURCE = Path(__file__).with_name("csrc") / "pwl_cpu.cpp"
INFOMAX_SOURCE = Path(__file__).with_name("csrc") / "infomax_cpu.cpp"
MATMUL_SOURCE = Path(__file__).with_name("csrc") / "onednn_matmul.cpp"
CUDA_SOURCE = Path(__file__).with_name("csrc") / "pwl_cuda.cu"

_state: dict = {}


class KernelUnavailable(RuntimeError):
    """The compiled kernel was asked for (``ACTFN_KERNELS=require``) but cannot be built."""


def requested_backend() -> str:
    """``ACTFN_KERNELS``: auto, require or off (see the module doc)."""
    if "ACTFN_PWL_BACKEND" in os.environ:     # (its old name, which also switched more than the activation)
        raise ValueError("ACTFN_PWL_BACKEND is now ACTFN_KERNELS, with the values auto, require (was cpp) and "
                         "off (was torch): unset ACTFN_PWL_BACKEND")
    value = os.environ.get("ACTFN_KERNELS", "auto").strip().lower()
    if value not in BACKENDS:
        raise ValueError(f"ACTFN_KERNELS must be one of {BACKENDS}, got {value!r}")
    return value


def _simd_flags(widest: bool = False) -> tuple[str, list[str]]:
    # AVX2 + FMA paths only where this CPU has them (no -march=native: the cache may be shared); with
    # ``widest``, AVX-512 where the CPU has it (both kernels use it: 16-wide loops, register-table lookups)
    capability = torch.backends.cpu.get_cpu_capability()
    if widest and capability == "AVX512":
        return "avx512", ["-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mprefer-vector-width=512"]
    if capability in ("AVX2", "AVX512"):
        return "avx2", ["-mavx2", "-mfma"]
    return "generic", []


def ninja_path() -> str:
    """The PATH under which the kernels are built: this Python's own scripts folder first when it has
    ninja (``requirements.txt`` installs it there).  Two ninja builds on PATH (pip's and a system
    package's) keep different build logs: one that finds the other's log takes the cached kernel for
    stale and recompiles it, and a notebook kernel (venv first on PATH) alternating with a plain
    ``.venv/bin/python`` (system ninja first) recompiled all three, about 90 s, in every new process."""
    path = os.environ.get("PATH", "")
    scripts = Path(sys.executable).parent
    if (scripts / "ninja").is_file() and path.split(os.pathsep)[0] != str(scripts):
        return os.pathsep.join([str(scripts), path]) if path else str(scripts)
    return path


def _compiler_version(command: list[str]) -> str:
    try:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        return f"unavailable ({type(err).__name__})"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"


def build_folder(name: str, sources: list[Path], flags: list[str], compiler: list[str]) -> Path:
    """The cache folder of one build: ``NAME_DIGEST`` under :func:`extensions_dir`, the digest covering the
    sources, the flags, the compiler's version and torch's and Python's versions."""
    h = hashlib.sha256()
    for src in sources:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    h.update(repr((flags, _compiler_version(compiler), torch.__version__, torch.version.git_version,
                   sys.version)).encode())
    return extensions_dir() / f"{name}_{h.hexdigest()[:16]}"


def _build(name: str = "actfn_pwl_cpu", source: Path = SOURCE, widest: bool = False):
    variant, flags = _simd_flags(widest)
    cflags = ["-O3", "-fno-math-errno", "-fopenmp", *flags]
    # (the headers of csrc/ too: a source includes them by name, and the folder must change with them)
    headers = sorted(source.parent.glob("*.h"))
    folder = build_folder(f"{name}_{variant}", [source, *headers], cflags, [os.environ.get("CXX", "c++")])
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "No CUDA runtime is found" (said on import): irrelevant on the CPU
    path = os.environ.get("PATH")
    os.environ["PATH"] = ninja_path()   # (torch runs the ninja it finds on PATH)
    try:
        from torch.utils import cpp_extension

        module = cpp_extension.load(
            name=f"{name}_{variant}", sources=[str(source)], build_directory=str(folder),
            extra_cflags=cflags, extra_ldflags=["-fopenmp"], verbose=False)
    finally:
        logger.setLevel(level)
        if path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = path
    return module, f"cpp-{variant}"


def _load(key, name: str, source: Path, widest: bool, fallback: str, warning) -> object | None:
    """Build ``source`` once per ``key`` and cache it; if it cannot be built, raise under
    ``ACTFN_KERNELS=require``, else warn once (``warning(err)`` says what runs instead) and cache None."""
    requested = requested_backend()
    if key not in _state:
        try:
            _state[key] = _build(name, source, widest)
        except Exception as err:  # no compiler, no ninja, a build error: say so, once
            if requested == "require":
                raise KernelUnavailable(f"ACTFN_KERNELS=require but {source.name} could not be built: {err}") from err
            warnings.warn(warning(err), RuntimeWarning, stacklevel=4)
            _state[key] = (None, fallback)
    return _state[key][0]


def cpu_kernel():
    """The compiled module, or ``None`` when the PyTorch path is to be used (see the module doc)."""
    requested = requested_backend()
    if requested == "off":
        return None
    module = _load(requested, "actfn_pwl_cpu", SOURCE, True, "torch (compiled kernel unavailable)",
                   lambda err: f"actfn: the compiled CPU kernel could not be built ({type(err).__name__}: "
                               f"{str(err).strip().splitlines()[-1] if str(err).strip() else err}); using the "
                               "PyTorch path, which is several times slower. Install g++ and ninja to fix this.")
    if module is not None and ("tuned", requested) not in _state:
        _state["tuned", requested] = tuned()
        if _state["tuned", requested] and _cpu_vendor() == "GenuineIntel" and hasattr(module, "set_small_planes_in_order"):
            module.set_small_planes_in_order(True)
    return module


def tuned() -> bool:
    """``ACTFN_KERNELS_TUNED=1``: orders of summation tuned to this CPU's vendor, faster there but with
    other last bits than every other CPU's (opt-in; the default gives the same bits everywhere)."""
    value = os.environ.get("ACTFN_KERNELS_TUNED", "0").strip()
    if value not in ("0", "1"):
        raise ValueError(f"ACTFN_KERNELS_TUNED must be 0 or 1, got {value!r}")
    return value == "1"


def _cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), "")
    except OSError:
        return ""


def infomax_kernel():
    """The compiled InfoMax-bank kernel, or ``None`` (the bank then runs its PyTorch path); as :func:`cpu_kernel`."""
    requested = requested_backend()
    if requested == "off":
        return None
    return _load(("infomax", requested), "actfn_infomax_cpu", INFOMAX_SOURCE, True, "torch (compiled kernel unavailable)",
                 lambda err: f"actfn: the compiled InfoMax kernel could not be built ({type(err).__name__}); the "
                             "bank uses its PyTorch path, which is slower. Install g++ and ninja to fix this.")


def onednn_requested() -> bool:
    """``ACTFN_ONEDNN=1``: the InfoMax bank's float32 products by oneDNN (opt-in; default torch.mm)."""
    value = os.environ.get("ACTFN_ONEDNN", "0").strip()
    if value not in ("0", "1"):
        raise ValueError(f"ACTFN_ONEDNN must be 0 or 1, got {value!r}")
    return value == "1"


def onednn_matmul():
    """``matmul_into(a, b, out, beta)``: out = a b + beta out for float32 CPU tensors, by oneDNN (see
    ``csrc/onednn_matmul.cpp`` for why), or ``None`` (callers then use torch's products).

    Opt-in (``ACTFN_ONEDNN=1``): the module declares a PyTorch function that has no public header,
    whose signature has changed between releases.  So it is loaded only when asked for, and only after
    a self-test against ``torch.mm`` (:func:`_self_test`); if it cannot be built or fails the test, a
    warning says so and torch's products are used (an error with ``ACTFN_KERNELS=require``)."""
    requested = requested_backend()
    if requested == "off" or not onednn_requested() or not torch.backends.mkldnn.is_available():
        return None
    key = ("matmul", requested)
    module = _load(key, "actfn_onednn_matmul", MATMUL_SOURCE, False, "torch.mm",
                   lambda err: f"actfn: oneDNN's matrix product could not be loaded ({type(err).__name__}); the "
                               "InfoMax bank's float32 products use torch.mm.")
    if module is not None and ("matmul-tested", requested) not in _state:
        _state["matmul-tested", requested] = True
        problem = _self_test(module)
        if problem:
            if requested == "require":
                raise KernelUnavailable(f"ACTFN_KERNELS=require but onednn_matmul.cpp failed its self-test: {problem}")
            warnings.warn(f"actfn: oneDNN's matrix product failed its self-test ({problem}); the InfoMax bank's "
                          "float32 products use torch.mm.", RuntimeWarning, stacklevel=2)
            _state[key] = (None, "torch.mm (oneDNN failed its self-test)")
            module = None
    return module


def _self_test(module) -> str | None:
    """What is wrong with ``module.matmul_into`` against ``torch.mm``, or None: float32, a transposed
    operand and an output slice, both values of beta."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(37, 300, generator=gen), torch.randn(29, 300, generator=gen).T
    for beta in (0.0, 1.0):
        out = torch.randn(40, 29, generator=gen)[2:39]
        expected = a @ b + beta * out
        try:
            module.matmul_into(a, b, out, beta)
        except Exception as err:       # (a changed signature fails here, not in the middle of training)
            return f"{type(err).__name__}: {err}"
        if not torch.allclose(out, expected, rtol=1e-4, atol=1e-4):
            return f"beta = {beta:g}: largest difference {float((out - expected).abs().max()):.3g}"
    return None


def extensions_dir() -> Path:
    """Where compiled kernels are cached: ``TORCH_EXTENSIONS_DIR``, else ``~/.cache/torch_extensions``."""
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")


def find_nvcc() -> str | None:
    """nvcc from ``CUDA_HOME``/``CUDA_PATH``, the PATH, or /usr/local/cuda; None if there is none."""
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    found = shutil.which("nvcc")
    if found:
        return found
    return "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").is_file() else None


def build_cuda_library(arch: str, nvcc: str | None = None) -> Path:
    """Compile ``csrc/pwl_cuda.cu`` for ``arch`` (e.g. ``"90"``) into a cached shared library (machine
    code for that architecture and PTX for newer ones); rebuilt only when the source changes."""
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise FileNotFoundError("nvcc (the CUDA compiler) was not found: set CUDA_HOME or put nvcc on PATH")
    folder = build_folder(f"actfn_pwl_cuda_sm{arch}", [CUDA_SOURCE], [arch], [nvcc])
    library = folder / "actfn_pwl_cuda.so"
    if not library.is_file():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f"build-{os.getpid()}.so"
        cmd = [nvcc, "-O3", "-shared", "-Xcompiler", "-fPIC", "-gencode", f"arch=compute_{arch},code=[sm_{arch},compute_{arch}]",
               "-o", str(tmp), str(CUDA_SOURCE)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nvcc failed ({' '.join(cmd)}):\n{done.stderr.strip()}")
        os.replace(tmp, library)           # atomic: a concurrent build never loads half a file
    return library


def cuda_kernel(device=None):
    """The CUDA kernels for ``device`` (:class:`actfn.kernels.pwl_cuda.PwlCuda`), or ``None`` when CUDA tensors
    are to take the PyTorch path (asked for, or nvcc cannot build them: said once, an error under
    ``ACTFN_KERNELS=require``)."""
    requested = requested_backend()
    if requested == "off" or not torch.cuda.is_available():
        return None
    index = torch.device(device).index if device is not None else None
    index = torch.cuda.current_device() if index is None else index
    by_device = ("cuda-device", requested, index)       # (every forward and backward asks: a dict hit)
    if by_device in _state:
        return _state[by_device]
    props = torch.cuda.get_device_properties(index)
    arch = f"{props.major}{props.minor}"
    key = ("cuda", requested, arch, props.multi_processor_count)
    if key not in _state:
        try:
            from .pwl_cuda import PwlCuda

            lib = ctypes.CDLL(str(build_cuda_library(arch)))
            kernel = PwlCuda(lib, props.multi_processor_count, getattr(props, "max_threads_per_multi_processor", 2048),
                             getattr(props, "shared_memory_per_multiprocessor", 228 * 1024), name=f"cuda-sm{arch}")
            _state[key] = (kernel, f"cuda-sm{arch}")
        except Exception as err:
            if requested == "require":
                raise KernelUnavailable(f"ACTFN_KERNELS=require but {CUDA_SOURCE.name} could not be built: {err}") from err
            warnings.warn(f"actfn: the CUDA kernel could not be built ({type(err).__name__}: "
                          f"{str(err).strip().splitlines()[0] if str(err).strip() else err}); CUDA tensors take the "
                          "PyTorch path, which is several times slower. Install the CUDA toolkit (nvcc) to fix this.",
                          RuntimeWarning, stacklevel=3)
            _state[key] = (None, "torch (CUDA kernel unavailable)")
    _state[by_device] = _state[key][0]
    return _state[key][0]


def cuda_backend(device=None) -> str:
    """Which path CUDA tensors take: ``cuda-smXY``, ``torch ...``, or ``no GPU``."""
    if not torch.cuda.is_available():
        return "no GPU"
    if requested_backend() == "off":
        return "torch (ACTFN_KERNELS=off)"
    kernel = cuda_kernel(device)
    return kernel.name if kernel is not None else "torch (CUDA kernel unavailable)"


def products_backend() -> str:
    """Which library the InfoMax bank's float32 products run on: ``oneDNN`` or ``torch.mm``."""
    return "oneDNN" if onednn_matmul() is not None else "torch.mm"


def backend() -> str:
    """Which path CPU tensors take: ``cpp-avx512``, ``cpp-avx2``, ``cpp-generic`` or ``torch ...``."""
    if cpu_kernel() is None:
        return _state.get(requested_backend(), (None, "torch (ACTFN_KERNELS=off)"))[1]
    return _state[requested_backend()][1]


def backward_lanes() -> str | None:
    """The compiled CPU kernel's backward-pass lanes: ``zmm16`` or ``ymm8x2`` in AVX-512 builds (ymm8x2
    on Intel CPUs; the same bits either way), ``ymm8`` (AVX2 build) or ``scalar``; None on the PyTorch path."""
    kernel = cpu_kernel()
    return kernel.backward_lanes() if kernel is not None else None


def cpu_path() -> str:
    """:func:`backend`, with the backward pass's lanes where the compiled kernel runs (for the pages)."""
    lanes = backward_lanes()
    kernel = cpu_kernel()
    order = "; small planes in the tuned order" if kernel is not None and kernel.small_planes_in_order() else ""
    return backend() + (f" (backward pass: {lanes}{order})" if lanes else "")


def infomax_backend() -> str:
    """Which path the InfoMax bank takes on CPU tensors: ``cpp-avx512``, ``cpp-avx2``, ``cpp-generic`` or ``torch ...``."""
    if infomax_kernel() is None:
        return _state.get(("infomax", requested_backend()), (None, "torch (ACTFN_KERNELS=off)"))[1]
    return _state[("infomax", requested_backend())][1]


def warm_up(infomax: bool = False) -> None:
    """Build (or load) the compiled CPU kernels and run the activation once forward and backward, in
    float32 and float64, so that a timed section after it pays for neither a build (half a minute with a
    cold cache) nor a first call.  ``infomax``: the InfoMax bank's kernel and products too."""
    if infomax:
        infomax_kernel()
        onednn_matmul()
    if cpu_kernel() is None:
        return
    from ..pwl.op import piecewise_linear

    for dtype in (torch.float32, torch.float64):
        x = torch.linspace(-4, 4, 64, dtype=dtype, requires_grad=True)
        y = torch.linspace(0, 1, 33, dtype=dtype, requires_grad=True)
        piecewise_linear(x, y).sum().backward()
