"""vsvsrpp: BasicVSR++ video super-resolution and restoration for VapourSynth.

In a ``.vpy`` script::

    import vsvsrpp as vsrpp
    clip = vsrpp.BasicVSRPP(clip)          # any YUV/RGB/GRAY clip in, 4x the same format out
    clip = vsrpp.apply(clip)               # any family: what the checkpoint holds (the command line's)

Outside VapourSynth::

    model = vsvsrpp.load_model("reds4")    # (n, t, 3, h, w) in [0, 1] -> (n, t, 3, 4h, 4w)

The package, by concern: :mod:`vsvsrpp.arch` (the networks and what is known of them),
:mod:`vsvsrpp.hub` (pretrained registry, downloads, checkpoints), :mod:`vsvsrpp.runtime` (device,
precision, memory, windows, engine), :mod:`vsvsrpp.plugin` (the VapourSynth filters),
:mod:`vsvsrpp.tools` (evaluation, training, benchmark) and :mod:`vsvsrpp.cli`.
"""

__version__ = "0.1.0"
__all__ = ["BasicVSR", "BasicVSRPP", "IconVSR", "RealBasicVSR", "apply", "load_model", "__version__"]


def __getattr__(name: str):
    # Keep `import vsvsrpp` light: the filters import VapourSynth, load_model imports torch, and
    # `vsvsrpp --help` imports neither.
    if name == "load_model":
        from .hub.checkpoint import load_model

        return load_model
    if name in ("BasicVSRPP", "BasicVSR", "IconVSR", "RealBasicVSR", "apply"):
        from .plugin import entry

        return getattr(entry, name)
    raise AttributeError(f"module 'vsvsrpp' has no attribute {name!r}")
