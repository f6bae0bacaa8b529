"""Running a network: devices and precisions, the memory plan, the window grid, the engine.

Nothing here imports VapourSynth: the filters, evaluation and the benchmark share it.

* :mod:`~vsvsrpp.runtime.device`: device validation, precision names, free memory;
* :mod:`~vsvsrpp.runtime.memory`: memory estimate of a pass and the window/tile planner;
* :mod:`~vsvsrpp.runtime.windows`: the window planner (pure Python);
* :mod:`~vsvsrpp.runtime.engine`: passes on a device, tiles, OOM back-off, shared engines.
"""
