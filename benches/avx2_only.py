"""Run a command as if this CPU had AVX2 and nothing newer (no AVX512, VNNI, BF16 or AMX), to
measure the code paths such CPUs take without one at hand (see avx2_only.c for what it changes and
what it does not).

    python benches/avx2_only.py python benches/bench_ask.py
    python benches/avx2_only.py --check

Needs gcc and a CPU with the cpuid_fault flag (Linux; most recent x86 servers and VMs). Programs
that catch SIGSEGV themselves cannot run under it: pytest needs `-p no:faulthandler`, and Node.js
(playwright's driver, so tests/test_browser.py) and Ray's GCS server (tests/test_ray.py) fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_suffix(".c")
CHECK = """
import torch, numpy
flags = next(l for l in open('/proc/cpuinfo') if l.startswith('flags')).split()
print('torch sees', torch.backends.cpu.get_cpu_capability())
print('/proc/cpuinfo avx512 flags:', [f for f in flags if f.startswith('avx512')])
from search.precision import native_bfloat16
print('native bfloat16:', native_bfloat16())
"""


def build(folder: Path) -> Path:
    library = folder / "avx2_only.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(SOURCE), "-ldl"], check=True)
    return library


def main() -> int:
    command = sys.argv[1:]
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    if command == ["--check"]:
        command = [sys.executable, "-c", CHECK]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LD_PRELOAD=str(build(Path(tmp))))
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
