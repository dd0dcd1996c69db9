"""Build csrc/pwl_cuda.cu for the CPU through cuda_shim.h (see there): the CUDA kernels' indexing,
histograms and reductions, and actfn.kernels.pwl_cuda's launch plans, tested without a GPU."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from actfn.kernels import CUDA_SOURCE

HERE = Path(__file__).parent


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def shim_source() -> str:
    src = CUDA_SOURCE.read_text()
    src = re.sub(r"#include <cuda_(runtime|bf16|fp16)\.h>\n", "", src)
    src = '#include "cuda_shim.h"\n' + src
    src = re.sub(r"extern __shared__ float (\w+)\[\];", r"float* \1 = shim::shared_memory;", src)

    def launch(m):
        grid, block, shared, _stream = _split_top_level(m.group(2))
        return f"shim::launch(dim3({grid}), dim3({block}), {shared}, [&] {{ {m.group(1)}({m.group(3)}); }});"
    src, count = re.subn(r"([\w:]+(?:<[^<>;]*>)?)<<<(.*?)>>>\((.*?)\);", launch, src, flags=re.S)
    assert count == 3, f"expected 3 kernel launches in {CUDA_SOURCE.name}, found {count}"
    return src


def build(out_dir: Path) -> Path:
    source = out_dir / "pwl_cuda_shim.cpp"
    source.write_text(shim_source())
    library = out_dir / "pwl_cuda_shim.so"
    subprocess.run(["g++", "-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", f"-I{HERE}", "-o", str(library),
                    str(source)], check=True, capture_output=True, text=True)
    return library
