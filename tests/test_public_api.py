"""The public surface: __all__ sorted and complete; importing stays light."""

from __future__ import annotations

import subprocess
import sys

import guardrail


def test_all_is_sorted_and_complete():
    assert guardrail.__all__ == sorted(guardrail.__all__)
    public = {n for n in dir(guardrail) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(guardrail, n)).__name__ == "module"}
    assert public - modules - {"annotations"} <= set(guardrail.__all__) | {"__version__"}
    for name in guardrail.__all__:
        assert hasattr(guardrail, name), name


def test_import_does_not_pull_heavy_dependencies():
    code = (
        "import sys, guardrail\n"
        "from guardrail import Guard\n"
        "Guard.from_policy('default')\n"
        "heavy = [m for m in ('torch', 'transformers', 'fastapi', 'bitsandbytes', 'accelerate',"
        " 'guardrail.adapters', 'uvicorn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
