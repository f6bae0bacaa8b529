"""The plane transfer (issue 24): the CUDA path's frames in their own format, colour conversion
with the array-namespace arithmetic, results converted before they reach the host.

On the CPU the very same :class:`~vsvsrpp.plugin.transfer.PlaneTransfer` runs with NumPy arrays
standing for device arrays (``NumpyPlanes``, substituted where the filter asks for the device's
backend); its output is compared with the host path's (``core.resize`` around the network).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import vapoursynth as vs
from clips import clip_from_array, moving_frames

import vsvsrpp
from vsvsrpp.plugin import transfer as transfers
from vsvsrpp.runtime import memory

core = vs.core


@pytest.fixture
def planes_on_cpu(monkeypatch):
    """The filter takes the plane path on the CPU, with NumPy as its array backend."""
    made = []

    def backend_for(device):
        made.append(device)
        return transfers.NumpyPlanes()

    monkeypatch.setattr(transfers, "backend_for", backend_for)
    return made


def source(fmt: int, props: dict, t: int = 4, h: int = 24, w: int = 32, cut: int | None = 2) -> vs.VideoNode:
    """A textured clip in ``fmt`` (converted from RGB by core.resize) with a scene cut at ``cut``."""
    arr = moving_frames(t, h, w)
    if cut is not None:
        arr[cut:] = moving_frames(t - cut, h, w, seed=7)
    rgb = clip_from_array(arr)
    f = core.get_video_format(fmt)
    if f.color_family == vs.YUV:
        out = core.resize.Bicubic(rgb, format=fmt, matrix=props["_Matrix"], range=props.get("_Range", 0), chromaloc=props.get("_ChromaLocation", 0))
    elif f.color_family == vs.GRAY:
        out = core.resize.Point(rgb, format=fmt, matrix=1, range=props["_Range"])
    else:
        out = core.resize.Point(rgb, format=fmt)
    return core.std.SetFrameProps(core.std.RemoveFrameProps(out, ["_Matrix", "_Range", "_ChromaLocation"]), **props)


def frames(clip: vs.VideoNode) -> list[vs.VideoFrame]:
    return [clip.get_frame(n) for n in range(clip.num_frames)]


def assert_same_output(host: list[vs.VideoFrame], planes: list[vs.VideoFrame]) -> None:
    """Integer samples within 1 code value and equal in >= 99.9% of samples; float samples
    within 1e-4; the same frame properties."""
    for a, b in zip(host, planes):
        assert a.format.id == b.format.id and (a.width, a.height) == (b.width, b.height)
        assert dict(a.props) == dict(b.props)
        for p in range(a.format.num_planes):
            x, y = np.asarray(a[p]), np.asarray(b[p])
            if a.format.sample_type == vs.INTEGER:
                d = np.abs(x.astype(np.int64) - y.astype(np.int64))
                assert d.max() <= 1 and (d == 0).mean() >= 0.999, (p, d.max(), (d == 0).mean())
            else:
                np.testing.assert_allclose(y, x, atol=1e-4, rtol=0)


CASES = [
    # source format, its properties, output format (None: the source's)
    (vs.YUV420P8, {"_Matrix": 6, "_Range": 0, "_ChromaLocation": 0}, None),
    (vs.YUV420P10, {"_Matrix": 1, "_Range": 1, "_ChromaLocation": 1}, None),
    (vs.YUV422P16, {"_Matrix": 9, "_Range": 0, "_ChromaLocation": 2}, None),
    (vs.YUV444PS, {"_Matrix": 5}, None),
    (vs.YUV420P8, {"_Matrix": 1, "_Range": 0, "_ChromaLocation": 0}, vs.RGB24),
    (vs.YUV420P8, {"_Matrix": 6, "_Range": 0, "_ChromaLocation": 0}, vs.YUV444P16),
    (vs.RGB24, {"_Range": 1}, None),
    (vs.GRAY8, {"_Range": 0}, None),
]


@pytest.mark.parametrize(("fmt", "props", "out"), CASES, ids=lambda v: getattr(v, "name", None) if not isinstance(v, dict) else None)
def test_the_plane_path_gives_the_host_paths_frames(tiny_checkpoint, planes_on_cpu, monkeypatch, fmt, props, out):
    clip = source(fmt, props)
    kwargs = {"weights": str(tiny_checkpoint), "device": "cpu", "window": 2, "overlap": 1}
    if out is not None:
        kwargs["output_format"] = out
    planes = frames(vsvsrpp.apply(clip, **kwargs))
    assert planes_on_cpu  # the plane path was asked for
    monkeypatch.setattr(transfers, "backend_for", lambda device: None)
    host = frames(vsvsrpp.apply(clip, **kwargs))
    assert_same_output(host, planes)


def test_the_ordered_dither_is_done_on_the_plane_path_as_on_the_host(tiny_checkpoint, planes_on_cpu, monkeypatch):
    clip = source(vs.YUV420P10, {"_Matrix": 1, "_Range": 0, "_ChromaLocation": 0}, cut=None)
    kwargs = {"weights": str(tiny_checkpoint), "device": "cpu", "window": 4, "output_format": vs.YUV420P8, "dither": "ordered"}
    planes = frames(vsvsrpp.apply(clip, **kwargs))
    assert planes_on_cpu
    monkeypatch.setattr(transfers, "backend_for", lambda device: None)
    assert_same_output(frames(vsvsrpp.apply(clip, **kwargs)), planes)


def test_the_plane_graph_never_makes_float_rgb_frames(tiny_checkpoint, planes_on_cpu, monkeypatch):
    """The input reaches the transfer in its own format and the output leaves it in the output
    format: the graph's frames are never float RGB."""
    seen = []
    real = transfers.PlaneTransfer.to_tensor

    def to_tensor(self, fs):
        seen.extend(f.format.name for f in fs)
        return real(self, fs)

    monkeypatch.setattr(transfers.PlaneTransfer, "to_tensor", to_tensor)
    clip = source(vs.YUV420P10, {"_Matrix": 1, "_Range": 0, "_ChromaLocation": 0}, cut=None)
    out = vsvsrpp.apply(clip, weights=str(tiny_checkpoint), device="cpu", window=4)
    assert out.format.id == vs.YUV420P10 and out.get_frame(0).format.id == vs.YUV420P10
    assert set(seen) == {"YUV420P10"}


@pytest.mark.parametrize(
    ("props", "dither", "why"),
    [
        ({"_Matrix": 10, "_Primaries": 9, "_Transfer": 14}, "none", "matrix 10"),
        ({"_Matrix": 1, "_Range": 0, "_ChromaLocation": 0}, "error_diffusion", "dither"),
    ],
)
def test_what_the_device_does_not_convert_goes_to_the_host_with_one_log_line(tiny_checkpoint, planes_on_cpu, caplog, props, dither, why):
    clip = core.std.SetFrameProps(source(vs.YUV420P8, {"_Matrix": 9, "_Range": 0, "_ChromaLocation": 0}, t=2, cut=None), **props)
    with caplog.at_level(logging.INFO, logger="vsvsrpp"):
        out = vsvsrpp.apply(clip, weights=str(tiny_checkpoint), device="cpu", window=2, dither=dither)
        out.get_frame(0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("colour conversion on the host")]
    assert len(lines) == 1 and why in lines[0]


def test_plane_transfer_round_trip_is_the_colour_arithmetic():
    """to_tensor and to_frames are colorxp's conversions over the window's planes (NumPy backend)."""
    from vsvsrpp.plugin import colorxp
    from vsvsrpp.plugin.colors import Colors

    clip = source(vs.YUV420P8, {"_Matrix": 1, "_Range": 0, "_ChromaLocation": 0}, t=3, cut=None)
    colors = Colors.from_video(clip)
    t = transfers.PlaneTransfer(transfers.NumpyPlanes(), clip.format, colors, clip.format)
    fs = frames(clip)
    x = t.to_tensor(fs)
    assert x.shape == (3, 3, 24, 32) and x.dtype == torch.float32 and x.device.type == "cpu"
    want = colorxp.planes_to_rgb([np.stack([np.asarray(f[p]) for f in fs]) for p in range(3)], clip.format, colors)
    np.testing.assert_array_equal(x.numpy(), want)
    back = t.to_frames(x.clamp(0, 1))
    for f, planes in zip(fs, back):
        assert [p.dtype for p in planes] == [np.uint8] * 3 and [p.shape for p in planes] == [(24, 32), (12, 16), (12, 16)]
        assert np.abs(planes[0].astype(int) - np.asarray(f[0]).astype(int)).max() <= 1


@pytest.mark.parametrize(
    ("fmt", "size", "expected"),
    [
        (vs.YUV420P8, (3840, 2160), 12_441_600),
        (vs.YUV420P10, (3840, 2160), 24_883_200),
        (vs.YUV444P16, (1920, 1080), 12_441_600),
        (vs.RGBS, (1920, 1080), 24_883_200),
    ],
)
def test_bytes_per_frame(fmt, size, expected):
    f = core.get_video_format(fmt)
    assert transfers.bytes_per_frame(f, *size, planes=True) == expected
    assert transfers.bytes_per_frame(f, *size, planes=False) == 3 * size[0] * size[1] * 4


def test_an_output_window_kept_on_the_device_is_planned_there():
    """The plane transfer converts the output window on the GPU: the planner counts it there."""
    from vsvsrpp import arch

    family = {a.id: a for a in arch.ARCHITECTURES}["basicvsrpp"]
    shape = family.memory_shape(family.make_config(64, 7))
    gib = 1 << 30
    m = memory.estimate(shape, 32, 540, 960, 2, on_cpu=False)  # window 24 + 2 x overlap 4
    output = 32 * 3 * 2160 * 3840 * 4
    assert m.host >= output  # on the host path the output window is host memory

    def plan(device_bytes: int, on_device: bool):
        return memory.plan(shape, 540, 960, int(device_bytes / memory.BUDGET_FRACTION) + 1, 4, 2, host_free_bytes=200 * gib,
                           offload=False, output_on_device=on_device)  # fmt: skip

    assert (plan(m.device, False).window, plan(m.device, False).tile) == (24, None)
    short = plan(m.device, True)  # the pass's peak fits, the pass plus its output does not
    assert short.window < 24 or short.tile is not None
    assert plan(m.device + output, True).window == 24 and plan(m.device + output, True).tile is None


def test_the_docs_table_of_bytes_per_frame_is_the_codes():
    """docs/gpu.md's table comes from bytes_per_frame (960x540 in, 3840x2160 out, MB = 10**6 bytes)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "gpu.md").read_text()
    rows = re.findall(r"^\| (\w+) \| ([\d.]+) MB \| ([\d.]+) MB \| ([\d.]+) MB \| ([\d.]+) MB \|$", text, re.M)
    assert len(rows) == 4
    for name, *cells in rows:
        f = core.get_video_format(getattr(vs, name))
        want = [transfers.bytes_per_frame(f, w, h, planes) for (w, h) in ((960, 540), (3840, 2160)) for planes in (True, False)]
        assert [f"{b / 1e6:.2f}" for b in want] == cells, name


def test_the_window_graph_touches_neither_numpy_nor_the_engines_lock():
    """DESIGN: the graph asks the transfer for tensors and frames; the engine serialises passes."""
    import ast
    from pathlib import Path

    from vsvsrpp.plugin import graph

    tree = ast.parse(Path(graph.__file__).read_text())
    imported = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "numpy" not in imported
    locks = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "lock"
             and not (isinstance(node.value, ast.Name) and node.value.id == "self")]  # fmt: skip
    assert locks == []
