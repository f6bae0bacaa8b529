"""Reference timer: time the reference network like *model only*; print one JSON line.

Run by the reference venv's Python (never imports vsvsrpp), next to ``forward_timing.py``::

    python reference_timer.py SPEC_JSON

SPEC_JSON is one JSON object:

* ``module``, ``class``: the reference network (``vsbasicvsrpp.basicvsr_plusplus_net``,
  ``BasicVSRPlusPlusNet``), built as ``class(**config)``;
* ``config``: its keyword arguments (``mid_channels``, ``num_blocks``, ``is_low_res_input``);
* ``weights``: a bare state dict saved with ``torch.save`` (names as the reference's own);
* ``device``, ``threads`` (torch threads), ``repeat`` (forwards; the fastest is kept);
* ``jobs``: ``{"frames": path of a (t, 3, h, w) float32 .npy in [0, 1], "dtype": a torch dtype
  name such as "bfloat16", ...}`` each; other keys are echoed back.

Prints ``{"threads", "torch", "results"}``: the jobs, each with ``seconds`` (the fastest forward
over all frames, after a warm-up) and ``output_shape``, or ``error`` (one job failing does not
stop the others). The network is cast to the job's dtype as a whole (as the reference does for
RGBH clips).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import numpy as np
import torch


def time_job(net_class: type, state: dict, spec: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Build the network for one job, load ``state`` and time it; returns what to add to the job.

    Raises:
        RuntimeError: if the state dict does not match the network.
    """
    # Next to this file when run as a script (sys.path[0] is this folder).
    from forward_timing import best_forward

    device = torch.device(spec["device"])
    net = net_class(**spec["config"])
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    dtype = getattr(torch, job["dtype"])
    net = net.eval().to(device, dtype)
    x = torch.from_numpy(np.load(job["frames"]))[None].to(device, dtype)
    seconds, out = best_forward(net, x, spec["repeat"])
    return {"seconds": seconds, "output_shape": list(out.shape)}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write(__doc__)
        return 2
    spec = json.loads(argv[0])
    torch.set_num_threads(spec["threads"])
    net_class = getattr(importlib.import_module(spec["module"]), spec["class"])
    state = torch.load(spec["weights"], map_location="cpu", weights_only=True)
    results = []
    for job in spec["jobs"]:
        entry = dict(job)
        try:
            entry.update(time_job(net_class, state, spec, job))
        except Exception as e:  # out of memory, an unsupported dtype on this device...
            entry["error"] = f"{type(e).__name__}: {e}"
        results.append(entry)
        if spec["device"].startswith("cuda"):
            torch.cuda.empty_cache()
    sys.stdout.write(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__, "results": results}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
