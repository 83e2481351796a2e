"""Which kind of CPU this is, as far as the pipeline's numbers go: MKL and oneDNN pick kernels
by vendor and instruction set, so two kinds give the same training other last float digits,
and a training's trajectory carries them on. The `cpu_kind` stages of dvc.yaml write it to
pipeline/<task>/cpu_kind.json whenever that model's bytes change, so the committed files name
the kind that made each committed model, and `make pipeline` (tools/pipeline_check.py) knows
whether byte-identical outputs are to be expected here.

    python tools/cpu_kind.py [out.json]      # prints it without a path
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

# the instruction sets MKL, oneDNN and ATen choose kernels by
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
         "amx_tile", "amx_bf16")


def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return {}
    block = path.read_text().split("\n\n")[0]
    pairs = (line.split(":", 1) for line in block.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def cpu_kind() -> dict[str, object]:
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    return {
        "vendor": info.get("vendor_id", platform.machine()),
        "model": info.get("model name", platform.processor()),
        "instruction_sets": [flag for flag in FLAGS if flag in flags],
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def describe(kind: dict[str, object]) -> str:
    sets = ", ".join(kind.get("instruction_sets", [])) or "none of " + ", ".join(FLAGS[:3])
    return (f"{kind.get('model')} ({sets}; torch {kind.get('torch')} "
            f"{kind.get('torch_cpu_capability')})")


def main() -> int:
    text = json.dumps(cpu_kind(), indent=2) + "\n"
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
