"""Launching the CUDA kernels of the piecewise-linear activation (``csrc/pwl_cuda.cu``).

The kernels are plain C entry points called through ctypes with raw pointers and the current CUDA
stream: no PyTorch headers, so nvcc builds them in seconds (:func:`actfn.kernels.cuda_kernel` does,
once per GPU architecture).  This module plans a launch -- how ``x`` is split into blocks of threads
that each own one (channel, vector of positions) and walk a chunk of the samples, sized so that the
blocks fill the GPU once -- and allocates the outputs.  Plans are cached per shape.

The same code runs on the CPU through ``tests/cuda_shim`` (every CUDA thread a CPU thread), which is
how the indexing is tested on machines without a GPU.
"""
from __future__ import annotations

import ctypes
import math

import torch

DTYPES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
SHARED_BYTES = 48 * 1024     # shared memory a block may take without opting in (every CUDA GPU)
THREADS_HIST = (128, 64, 32)          # threads per block with the histograms (backward), the first that fits
THREADS_PLAIN = (256, 128, 64, 32)    # without them (forward, input gradient alone)
MAX_CHUNKS = 65535           # gridDim.y

_i64, _i32, _f32, _ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_float, ctypes.c_void_p


def _declare(lib) -> None:
    lib.actfn_pwl_forward.argtypes = [_i32, _i32, _ptr, _ptr, _ptr, _i64, _i64, _i64, _i64, _i32, _i32, _i32, _i32,
                                      _i32, _i64, _i64, _i64, _f32, _f32, _ptr]
    lib.actfn_pwl_backward.argtypes = [_i32, _i32, _ptr, _ptr, _ptr, _ptr, _ptr, _i64, _i64, _i64, _i64, _i32, _i32,
                                       _i32, _i32, _i32, _i64, _i64, _i64, _i64, _f32, _f32, _f32, _i32, _i32, _ptr]
    lib.actfn_pwl_knot_grad.argtypes = [_ptr, _ptr, _i64, _i64, _i64, _i32, _i32, _ptr]
    for f in (lib.actfn_pwl_forward, lib.actfn_pwl_backward, lib.actfn_pwl_knot_grad):
        f.restype = _i32


def _cuda_stream(t: torch.Tensor):
    return torch.cuda.current_stream(t.device).cuda_stream


class PwlCuda:
    """``forward(x, y, lo, hi)`` and ``backward(grad, x, y, lo, hi, need_x, need_y)`` as the CPU
    kernel's, for float32, bfloat16 and float16 ``x`` (tables and knot gradients in float32).

    ``multiprocessors``, ``threads_per_sm`` and ``shared_per_sm`` size the grid: as many blocks as the
    GPU holds at once, each walking as many samples as that leaves."""

    def __init__(self, lib, multiprocessors: int, threads_per_sm: int = 2048, shared_per_sm: int = 228 * 1024,
                 stream=_cuda_stream, name: str = "cuda"):
        _declare(lib)
        self.lib, self.name, self.stream = lib, name, stream
        self.multiprocessors, self.threads_per_sm, self.shared_per_sm = int(multiprocessors), threads_per_sm, shared_per_sm
        self._plans: dict = {}

    # -- planning ---------------------------------------------------------------------------------
    def plan(self, x: torch.Tensor, per_channel: bool, segments: int, histogram: bool, aligned: bool = True) -> dict | None:
        """Block layout for ``x``, or None when no block size fits the tables in shared memory.
        ``aligned``: every tensor read or written starts on 16 bytes (else one element per load)."""
        key = (tuple(x.shape), x.dtype, aligned, per_channel, segments, histogram)
        if key not in self._plans:
            self._plans[key] = self._plan(x, per_channel, segments, histogram, aligned)
        return self._plans[key]

    def _plan(self, x, per_channel, segments, histogram, aligned):
        size = x.element_size()
        numel = x.numel()
        plane = numel // (x.shape[0] * x.shape[1]) if per_channel else None
        vec = 1
        if aligned:
            for v in (16 // size, 4):      # 16-byte loads, else 4 elements at a time, else one
                if (plane if per_channel else numel) % v == 0:
                    vec = v
                    break
        for threads in (THREADS_HIST if histogram else THREADS_PLAIN):
            p = self._layout(x, per_channel, threads, vec)
            tables = p["cpb"] if per_channel and p["Q"] < threads else 1
            floats = (2 * segments * threads if histogram else 0) + tables * segments * (1 if histogram else 2)
            shared = floats * 4
            if shared <= SHARED_BYTES and (2 * segments + 1) * 4 * (1 + 256 // (2 * segments)) <= SHARED_BYTES:
                resident = max(1, min(self.threads_per_sm // threads, 32, self.shared_per_sm // (shared + 1024)))
                chunks = max(1, min(p["N"], math.ceil(resident * self.multiprocessors / p["blocks_x"]), MAX_CHUNKS))
                rows = math.ceil(p["N"] / chunks)
                return p | {"chunks": math.ceil(p["N"] / rows), "rows": rows}
        return None

    @staticmethod
    def _layout(x: torch.Tensor, per_channel: bool, threads: int, vec: int) -> dict:
        numel = x.numel()
        if per_channel:
            n, c = x.shape[0], x.shape[1]
            p = numel // (n * c)
        else:                      # shared knots: rows of `threads` vectors
            n, c, p = math.ceil(numel / (threads * vec)), 1, threads * vec
        q = p // vec
        if q >= threads:
            cpb, qtiles = 1, math.ceil(q / threads)
            blocks_x, slots = c * qtiles, c * qtiles
        else:
            cpb, qtiles = threads // q, 1
            blocks_x, slots = math.ceil(c / cpb), c
        return {"N": n, "C": c, "P": p, "Q": q, "vec": vec, "numel": numel, "threads": threads, "cpb": cpb,
                "qtiles": qtiles, "blocks_x": blocks_x, "slots": slots}

    def supports(self, x: torch.Tensor, y: torch.Tensor) -> bool:
        if x.dtype not in DTYPES or y.shape[-1] < 2 or x.numel() == 0 or y.dim() > 2:
            return False
        if y.dim() == 2 and (x.dim() < 2 or x.shape[1] != y.shape[0]):
            return False
        return self.plan(x, y.dim() == 2, y.shape[-1] - 1, True) is not None

    # -- the passes -------------------------------------------------------------------------------
    @staticmethod
    def _scale(lo: float, hi: float, n_knots: int):
        h = (hi - lo) / (n_knots - 1)
        return h, 1.0 / h, -lo / h            # s = a x + b, rounded to float32 as the other paths do

    @staticmethod
    def _check(rc: int, what: str):
        if rc != 0:
            raise RuntimeError(f"actfn: the CUDA kernel {what} failed with CUDA error {rc}")

    @staticmethod
    def _device_check(x: torch.Tensor):
        if x.is_cuda and x.device.index != torch.cuda.current_device():
            raise RuntimeError(f"actfn: the CUDA kernels run on the current device ({torch.cuda.current_device()}); "
                               f"x is on {x.device}: use `with torch.cuda.device({x.device.index}):`")

    def forward(self, x: torch.Tensor, y: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        self._device_check(x)
        x = x.contiguous()
        per_channel, segments = y.dim() == 2, y.shape[-1] - 1
        p = self.plan(x, per_channel, segments, False, x.data_ptr() % 16 == 0)
        _, a, b = self._scale(lo, hi, y.shape[-1])
        y32 = y.detach().to(torch.float32).contiguous()
        out = torch.empty_like(x)
        self._check(self.lib.actfn_pwl_forward(
            DTYPES[x.dtype], p["vec"], x.data_ptr(), out.data_ptr(), y32.data_ptr(), p["N"], p["C"], p["P"], p["numel"],
            segments, int(per_channel), p["threads"], p["cpb"], p["qtiles"], p["blocks_x"], p["chunks"], p["rows"],
            a, b, self.stream(x)), "actfn_pwl_forward")
        return out

    def backward(self, grad: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lo: float, hi: float,
                 need_x: bool, need_y: bool):
        if not (need_x or need_y):
            return None, None
        self._device_check(x)
        x, grad = x.contiguous(), grad.to(x.dtype).contiguous()
        per_channel, segments = y.dim() == 2, y.shape[-1] - 1
        p = self.plan(x, per_channel, segments, need_y, x.data_ptr() % 16 == 0 and grad.data_ptr() % 16 == 0)
        h, a, b = self._scale(lo, hi, y.shape[-1])
        y32 = y.detach().to(torch.float32).contiguous()
        grad_x = torch.empty_like(x) if need_x else None
        partial = (torch.empty(p["chunks"] * p["slots"] * 2 * segments, dtype=torch.float32, device=x.device)
                   if need_y else None)
        stream = self.stream(x)
        self._check(self.lib.actfn_pwl_backward(
            DTYPES[x.dtype], p["vec"], grad.data_ptr(), x.data_ptr(), grad_x.data_ptr() if need_x else None,
            y32.data_ptr(), partial.data_ptr() if need_y else None, p["N"], p["C"], p["P"], p["numel"], segments,
            int(per_channel), p["threads"], p["cpb"], p["qtiles"], p["blocks_x"], p["chunks"], p["rows"], p["slots"],
            a, b, h, int(need_x), int(need_y), stream), "actfn_pwl_backward")
        grad_y = None
        if need_y:
            tables = y.shape[0] if per_channel else 1
            grad_y = torch.empty(y.shape, dtype=torch.float32, device=x.device)
            self._check(self.lib.actfn_pwl_knot_grad(partial.data_ptr(), grad_y.data_ptr(), tables, p["chunks"],
                                                     p["slots"], p["qtiles"], segments, stream), "actfn_pwl_knot_grad")
            grad_y = grad_y.to(y.dtype)
        return grad_x, grad_y
