"""vsvsrpp: BasicVSR++ video super-resolution and restoration for VapourSynth.

In a ``.vpy`` script::

    import vsvsrpp as vsrpp
    clip = vsrpp.BasicVSRPP(clip)          # RGBS/RGBH in, 4x RGBS/RGBH out

Outside VapourSynth::

    model = vsvsrpp.load_model("reds4")    # (n, t, 3, h, w) in [0, 1] -> (n, t, 3, 4h, 4w)
"""

from .loading import load_model

__version__ = "0.1.0"
__all__ = ["BasicVSR", "BasicVSRPP", "RealBasicVSR", "load_model", "__version__"]


def __getattr__(name: str):
    # The filter imports VapourSynth; keep `import vsvsrpp` light for torch-only users.
    if name in ("BasicVSRPP", "BasicVSR", "RealBasicVSR"):
        from . import filter

        return getattr(filter, name)
    raise AttributeError(f"module 'vsvsrpp' has no attribute {name!r}")
