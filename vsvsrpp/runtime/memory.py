"""The memory model of a pass, the plan that fits it in a budget, and the measurement that
checks it (the model's every figure is held to measured peaks by ``tests/test_memory.py``).

A pass over ``t`` frames of ``h x w`` (padded) holds, on the compute device:

* the frames in the network's dtype (on the CPU in float32 they are the caller's tensor);
* the flows between neighbours, both ways: ``2 (t-1)`` maps of 2 float32 channels, always for
  whole frames (tiled passes crop them);
* the features kept for every frame (``feature_lists`` maps of ``mid_channels`` per frame:
  BasicVSR++ five, BasicVSR two), in the network's dtype, at the pass's size (a tile with its
  margin, or the whole frame); in host memory instead when offloading, with a few maps on the
  device;
* the largest transient of one phase: feature extraction (3 maps per frame, all frames at
  once unless offloading), SPyNet (about 1100 bytes per pixel of a batch of pairs at its
  input resolution), one propagation step (``step_bytes`` per feature pixel) or the reconstruction
  of one frame (``hr_channels`` maps at the output size);

and, in host memory, the output window (float32, ``e x 3 x scale*h x scale*w`` for the ``e``
emitted frames: the overlap frames are not reconstructed): frames are written into it as they
are reconstructed, and tiles are blended straight into it. On the CPU
host and device are the same memory, and the resident peak exceeds the live bytes where the pass's
blocks are heap-sized (:data:`CPU_ALLOCATOR_SLACK`).

:func:`plan` tries, in this order, the longest window on whole frames; the same with features
offloaded (CUDA only: on the CPU the host is the device); shorter windows (down to
:data:`MIN_WINDOW`), each without and then with offloading; step-wise tiles, the largest first
(exact: every stage runs tile by tile on whole-frame features, so only the transients shrink;
families with a ``tile_halo``); independent tiles, the largest first (each tile a pass of its
own: the least memory, but propagation differs near tile edges). It says what it chose and why
in :attr:`Plan.reason`.
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..arch import MemoryShape
from ..arch.blocks import FLOW_BATCH_PIXELS
from .windows import DEFAULT_WINDOW, MIN_STEP_TILE, MIN_TILE, tile_layout

#: Fraction of the free memory a pass may use (the rest covers the allocator's slack, cached
#: output windows and everything else in the process).
BUDGET_FRACTION = 0.7
#: Shortest window the planner chooses before it resorts to spatial tiles (and, when no tile
#: fits, to shorter windows: the last resort).
MIN_WINDOW = 6


#: Bytes SPyNet holds per pixel of a batch of frame pairs at full resolution (its first level
#: keeps 8 + 32 + 64 float32 channels alive, plus the pyramid, the normalised copies and the
#: convolutions' reorders; measured 930-1100 on the CPU).
SPYNET_BYTES_PER_PIXEL = 1100
#: Bytes per pixel of every pair of a pass while SPyNet runs, whatever its batch: the pair's two
#: frames gathered (2 x 3 float32) and its flow before the batches are joined (2 float32).
SPYNET_PAIR_BYTES = 32
#: Bytes per input pixel of a frame while its features are extracted at the input resolution,
#: besides 3 feature maps (the 3-channel input reordered to a 16-channel blocked layout,
#: float32; measured 250). The 1x models' first convolution is strided: it holds its
#: half-resolution output instead (:func:`_extract_bytes`).
EXTRACT_BYTES_PER_PIXEL = 256
#: Resident memory per live byte on the CPU, where a pass's feature maps are heap-sized: glibc
#: serves blocks under its mmap threshold (which grows up to :data:`HEAP_BLOCK_LIMIT`) from
#: heaps that keep freed transients, so a pass's resident peak exceeds the bytes alive at any one
#: time. The engine trims the heap wherever a pass enters its next phase (SPyNet, each branch,
#: the reconstruction), so only one phase's freed transients stay resident. Measured so, over
#: passes of every family after passes of the others in the same process: 0.99 to 1.06 for whole
#: frames at the input resolution and 1.06 for the 1x models (quarter-resolution features; before
#: the phase trims 1.25 to 1.6, varying from run to run with what earlier passes had left).
CPU_ALLOCATOR_SLACK = 1.2
#: glibc's largest mmap threshold (64-bit): larger blocks are mapped on their own and returned
#: when freed. Passes whose feature maps are this large have no slack (measured, BasicVSR++ c64n7
#: x4 at 960x540, 10 frames: 12.44 GiB whole, 7.88 GiB in step-wise tiles; the live bytes of the
#: model 12.43 and 7.79).
HEAP_BLOCK_LIMIT = 32 << 20


@dataclass(frozen=True)
class PassMemory:
    """Peak memory of one pass, in bytes.

    Attributes:
        device: on the compute device (its peak over the pass).
        host: in host memory besides: the output window, and the kept features when offloading.
        total: the peak of both together where they are one memory (the CPU): the output
            window fills up during the reconstruction, when the device's peak may have passed.
    """

    device: int
    host: int
    total: int


def estimate(
    shape: MemoryShape,
    frames: int,
    height: int,
    width: int,
    dtype_bytes: int = 4,
    *,
    tile: int | None = None,
    margin: int = 0,
    offload: bool = False,
    on_cpu: bool = True,
    exact: bool = False,
    flow_batch: int = FLOW_BATCH_PIXELS,
    emitted: int | None = None,
) -> PassMemory:
    """The memory model of one pass (see the module's docstring for what it counts).

    Args:
        shape: the network's :class:`~vsvsrpp.arch.descriptor.MemoryShape`.
        frames: frames in the pass (window + overlaps), >= 1.
        height, width: input frame size in pixels (after padding to the size requirements).
        dtype_bytes: bytes per value in the network's precision (4 for fp32, 2 for fp16/bf16).
        tile: tile side in input pixels (None: whole frames); independent tiles run on the
            engine's layout (:func:`~vsvsrpp.runtime.windows.tile_layout`: near-equal cores of at
            most ``tile``, each with ``margin`` on both sides), whose largest pass is counted.
        margin: the tiles' context margin, input pixels.
        offload: the kept features live in host memory (a few maps stay on the device).
        on_cpu: the device is the CPU: float32 frames are not copied for the pass.
        exact: the tiles are step-wise (``shape.tile_halo`` must be set): see
            :func:`_estimate_exact`.
        flow_batch: frame pixels per SPyNet batch (:func:`vsvsrpp.arch.blocks.flow_batch`;
            at least one pair of frames runs at a time).
        emitted: the frames of the pass whose output is kept (its window without the overlap
            frames; default all): the output window holds only them.

    Returns:
        The peak on the device and what the host holds besides.
    """
    kept_out = frames if emitted is None else min(frames, emitted)
    if exact and tile is not None and (height > tile or width > tile):
        return _estimate_exact(shape, frames, height, width, dtype_bytes, tile, offload, on_cpu, flow_batch, kept_out)
    fs, d = shape.feature_stride, dtype_bytes
    ph, pw = height, width
    tiled = tile is not None and (height > tile or width > tile)
    if tiled:  # the largest pass of the engine's layout: near-equal cores, each with its margins
        ph, pw = (max(s.end - s.start for s in tile_layout(n, tile, margin, MIN_TILE, fs)) for n in (height, width))

    def feature_pixels(h: int, w: int) -> int:
        return math.ceil(h / fs) * math.ceil(w / fs)

    px = feature_pixels(ph, pw)
    feat = shape.mid_channels * px * d
    kept = frames * shape.feature_lists * feat
    flow_px = feature_pixels(height, width)
    flows = 2 * max(frames - 1, 0) * 2 * flow_px * 4
    inputs = 0 if on_cpu and d == 4 else frames * 3 * height * width * d
    output = kept_out * 3 * shape.scale * height * shape.scale * width * 4
    per_frame = 3 * feat + _extract_bytes(shape, ph * pw, d)
    extract = (1 if offload else frames) * per_frame
    pairs = 2 * max(frames - 1, 0)
    spynet = _spynet_bytes(pairs, flow_px, flow_batch)
    step = px * (shape.step_bytes if d == 4 else shape.step_bytes_reduced)
    out_px = shape.scale * ph * shape.scale * pw if shape.scale > 1 else ph * pw
    recon = shape.hr_channels * out_px * d + 10 * feat  # and the reconstruction's own blocks
    on_device = (shape.feature_lists + 2) * feat if offload else kept
    if tiled and shape.whole_frame_flows:  # computed once on whole frames, kept for every tile
        flow_phase, pass_flows = flows + spynet, flows
    else:
        tile_flows = 2 * max(frames - 1, 0) * 2 * px * 4
        flow_phase = frames * feat + tile_flows + _spynet_bytes(pairs, px, flow_batch)
        pass_flows = tile_flows
    later = max(extract, on_device + pass_flows + step, on_device + pass_flows + recon)
    device = inputs + max(flow_phase, later)
    host = output + (kept if offload else 0)
    if not on_cpu:
        return PassMemory(device, host, device + host)
    # the flow phase comes first, on a clean heap; the later phases leave freed transients
    # behind (_slack). The output window fills up during the reconstruction, or
    # is zeroed first when tiles are added to it.
    later_total = max(extract, on_device + pass_flows + step, on_device + pass_flows + recon + (0 if tiled else output))
    total = inputs + max(flow_phase, int(later_total * _slack(feat))) + (output if tiled else 0)
    return PassMemory(int(inputs + max(flow_phase, later * _slack(feat))), host, total)


def _spynet_bytes(pairs: int, pixels: int, flow_batch: int) -> int:
    """SPyNet's transients for ``pairs`` pairs of frames of ``pixels`` (flow-resolution) pixels,
    run ``flow_batch`` pixels (at least one pair) at a time: a batch's, and for every pair its two
    frames gathered (reference and support, float32 RGB) and its flow before the batches are
    joined (:func:`~vsvsrpp.arch.blocks.neighbour_flows`)."""
    if not pairs:
        return 0
    return min(pairs, max(1, flow_batch // pixels)) * pixels * SPYNET_BYTES_PER_PIXEL + pairs * pixels * SPYNET_PAIR_BYTES


def _slack(feature_map: int) -> float:
    """Resident bytes per live byte on the CPU for a pass whose feature maps have
    ``feature_map`` bytes (see :data:`CPU_ALLOCATOR_SLACK`)."""
    if feature_map >= HEAP_BLOCK_LIMIT:
        return 1.0
    return CPU_ALLOCATOR_SLACK


def _extract_bytes(shape: MemoryShape, pixels: int, d: int) -> int:
    """What feature extraction holds for an input of ``pixels`` pixels besides its feature maps:
    at the input resolution (feature stride 1) the blocked copy of the input; for the 1x models
    the strided first convolution's half-resolution output (measured, 512x768, 6 frames: 63 MiB
    for the phase; 256 bytes per input pixel would have counted 576 MiB)."""
    if shape.feature_stride == 1:
        return EXTRACT_BYTES_PER_PIXEL * pixels
    return shape.mid_channels * math.ceil(pixels / 4) * d


def _estimate_exact(
    shape: MemoryShape, frames: int, height: int, width: int, d: int, tile: int, offload: bool, on_cpu: bool,
    flow_batch: int = FLOW_BATCH_PIXELS, emitted: int | None = None,
) -> PassMemory:
    """Step-wise (exact) tiles: the kept features, the flows and the output are whole-frame as in
    a whole-frame pass, but each stage's transient is one tile's, with the context it reads
    (``shape.tile_halo``, the widest stage's, counted for every stage). Besides, a branch
    holds float32 copies of its last two outputs (what the alignment samples) and, when
    offloading, the output being written (otherwise it is one of the kept features)."""
    if shape.tile_halo is None:
        raise ValueError("step-wise tiles need a family with a tile_halo (BasicVSR++)")
    fs = shape.feature_stride
    fh, fw = math.ceil(height / fs), math.ceil(width / fs)
    t = max(1, tile // fs)
    ch, cw = math.ceil(fh / math.ceil(fh / t)), math.ceil(fw / math.ceil(fw / t))  # the largest tile
    c = shape.mid_channels
    feat = c * fh * fw * d
    kept = frames * shape.feature_lists * feat
    flows = 2 * max(frames - 1, 0) * 2 * fh * fw * 4
    inputs = 0 if on_cpu and d == 4 else frames * 3 * height * width * d
    output = (frames if emitted is None else emitted) * 3 * shape.scale * height * shape.scale * width * 4
    pairs = 2 * max(frames - 1, 0)
    spynet = _spynet_bytes(pairs, fh * fw, flow_batch)
    px = min(fh, ch + 2 * shape.tile_halo) * min(fw, cw + 2 * shape.tile_halo)  # a tile with its context
    step = px * (shape.step_bytes if d == 4 else shape.step_bytes_reduced)
    branch = 2 * c * fh * fw * 4 + (feat if offload else 0)
    recon = shape.hr_channels * 16 * px * d + 10 * c * px * d
    extract = feat + 3 * c * px * d + _extract_bytes(shape, px * fs * fs, d)
    on_device = shape.feature_lists * c * px * d if offload else kept  # tile crops when offloading
    later = max(on_device + extract, on_device + flows + branch + step, on_device + flows + recon)
    device = inputs + max(flows + spynet, later)
    host = output + (kept if offload else 0)
    if not on_cpu:
        return PassMemory(device, host, device + host)
    # as a whole-frame pass: the output window fills up during the reconstruction
    later_total = max(on_device + extract, on_device + flows + branch + step, on_device + flows + recon + output)
    total = inputs + max(flows + spynet, int(later_total * _slack(feat)))
    return PassMemory(int(inputs + max(flows + spynet, later * _slack(feat))), host, total)


def estimate_bytes(shape: MemoryShape, frames: int, height: int, width: int, dtype_bytes: int = 4) -> int:
    """The CPU peak of a whole-frame pass (:func:`estimate`'s ``total``), in bytes."""
    return estimate(shape, frames, height, width, dtype_bytes).total


@dataclass(frozen=True)
class Plan:
    """What :func:`plan` chose.

    Attributes:
        window: frames emitted per pass.
        tile: tile side in input pixels, or None for whole frames.
        offload: keep features in host memory between uses.
        estimate: the pass's :class:`PassMemory` under that choice.
        reason: one sentence: the choice and why (the filter logs it once).
        exact_tiles: the tiles are step-wise (the output equals whole frames); False for
            independent tiles (or none).
        flow_batch: frame pixels per SPyNet batch (:func:`vsvsrpp.arch.blocks.flow_batch`):
            the default, or one pair of frames when the default's batch does not fit.
        last_resort: the window is shorter than :data:`MIN_WINDOW` (and than the longest asked
            for): every frame sees fewer neighbours than the network is meant to (worth a warning).
    """

    window: int
    tile: int | None
    offload: bool
    estimate: PassMemory
    reason: str
    exact_tiles: bool = False
    flow_batch: int = FLOW_BATCH_PIXELS
    last_resort: bool = False


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def plan(
    shape: MemoryShape,
    height: int,
    width: int,
    free_bytes: int,
    overlap: int,
    dtype_bytes: int = 4,
    max_window: int = DEFAULT_WINDOW,
    num_frames: int | None = None,
    *,
    host_free_bytes: int | None = None,
    margin: int = 0,
    offload: bool | None = None,
    output_on_device: bool = False,
) -> Plan:
    """Choose how to run passes within ``BUDGET_FRACTION`` of the free memory: the longest
    window (up to ``max_window``) on whole frames; then offloading (CUDA); then shorter windows
    (down to :data:`MIN_WINDOW`); then, at that window, the largest square step-wise tile, exact
    (a multiple of 16, down to :data:`MIN_STEP_TILE`; when ``shape.tile_halo`` is set); then the
    largest independent tile (down to :data:`MIN_TILE`). As the last resort, windows shorter than
    :data:`MIN_WINDOW` (down to 1 frame plus the overlaps), each on whole frames, then in
    step-wise and independent tiles: every frame then sees fewer neighbours, but a pass that fits
    beats a refusal. Each choice is tried with SPyNet's default batch, then with one pair of
    frames at a time (the same flows, a little slower), before the next choice.

    Args:
        shape: the network's memory shape.
        height, width: input frame size in pixels (after padding).
        free_bytes: memory available on the device.
        overlap: context frames on each side of a window.
        dtype_bytes: bytes per value in the network's precision.
        max_window: the longest window considered.
        num_frames: the clip's length, when known: no pass runs more frames than the clip has.
        host_free_bytes: host memory available when the device is a GPU; None when the device
            is the CPU (host and device are one memory, ``free_bytes``).
        margin: the tiles' context margin (input pixels).
        offload: the caller's choice of offloading (None: the planner's), on a GPU; on the CPU
            host and device are one memory and it changes nothing.
        output_on_device: the output window stays on the GPU (the plane transfer converts it
            there), so it is counted on the device, on top of the pass's peak, not on the host.

    Raises:
        MemoryError: when nothing fits; the message gives the memory the smallest choice needs
            (a window of 1 frame in the smallest tiles) and the budget.
    """
    on_cpu = host_free_bytes is None
    budget = int(free_bytes * BUDGET_FRACTION)
    host_budget = budget if on_cpu else int(host_free_bytes * BUDGET_FRACTION)

    def run_length(window: int) -> int:
        frames = window + 2 * overlap
        return frames if num_frames is None else max(1, min(frames, num_frames))

    def emitted(window: int) -> int:
        return window if num_frames is None else max(1, min(window, num_frames))

    def fits(m: PassMemory, emitted: int) -> bool:
        if on_cpu:
            return m.total <= budget
        moved = emitted * 3 * shape.scale * height * shape.scale * width * 4 if output_on_device else 0
        return m.device + moved <= budget and m.host - moved <= host_budget

    one_pair = 1  # any batch of fewer pixels than a frame runs one pair at a time

    def pass_memory(window: int, tile: int | None, exact: bool, offload: bool, batch: int) -> PassMemory:
        return estimate(
            shape, run_length(window), height, width, dtype_bytes, tile=tile, margin=margin, offload=offload,
            on_cpu=on_cpu, exact=exact, flow_batch=batch, emitted=emitted(window),
        )  # fmt: skip

    def need(m: PassMemory) -> str:
        if on_cpu:
            return f"{_mib(m.total)} of the {_mib(budget)} available"
        return f"{_mib(m.device)} of the {_mib(budget)} available on the device and {_mib(m.host)} of the {_mib(host_budget)} on the host"

    largest = (max(height, width) // 16) * 16
    stepwise = [(side, True) for side in range(largest, MIN_STEP_TILE - 1, -16)] if shape.tile_halo is not None else []
    independent = [(side, False) for side in range(largest, MIN_TILE - 1, -16)]
    offloads = (False,) if on_cpu else (False, True) if offload is None else (offload,)
    first = pass_memory(max_window, None, False, False, FLOW_BATCH_PIXELS)
    for window in range(max_window, 0, -1):
        tiles = [(None, False)] + (stepwise + independent if window <= MIN_WINDOW else [])
        for tile, exact in tiles:
            for offload in offloads:
                for batch in (FLOW_BATCH_PIXELS, one_pair):
                    m = pass_memory(window, tile, exact, offload, batch)
                    if fits(m, emitted(window)):
                        short = window < min(MIN_WINDOW, max_window)
                        whole = pass_memory(window, None, False, offloads[-1], one_pair)  # the least whole frames need
                        why = _reason(window, max_window, short, tile, exact, offload, batch, margin, need(first), need(whole), need(m))
                        return Plan(window, tile, offload, m, why, exact and tile is not None, batch, short)
    smallest = [(pass_memory(1, side, exact, offloads[-1], one_pair), side, exact) for side, exact in (stepwise[-1:] + independent[-1:] or [(None, False)])]
    m, side, exact = min(smallest, key=lambda found: (found[0].device, found[0].total))
    how = "whole" if side is None else f"in {side} px {'step-wise' if exact else 'independent'} tiles"
    frames = run_length(1)
    raise MemoryError(
        f"a pass of {frames} frame{'s' if frames > 1 else ''} (1 + 2 x overlap {overlap}) of {width}x{height} {how} "
        f"needs about {need(m)}"
    )


def spynet_batch(
    shape: MemoryShape,
    frames: int,
    height: int,
    width: int,
    free_bytes: int,
    dtype_bytes: int = 4,
    *,
    on_cpu: bool = True,
    tile: int | None = None,
    margin: int = 0,
    exact: bool = False,
    offload: bool = False,
    emitted: int | None = None,
) -> int:
    """SPyNet's batch for a pass whose window and tiles are fixed by the caller (the cluster's
    segments, ``window=N``): the default (:data:`~vsvsrpp.arch.blocks.FLOW_BATCH_PIXELS`) when the
    pass fits ``BUDGET_FRACTION`` of ``free_bytes`` with it (on a GPU: its device peak), else one
    pair of frames at a time (1), which never needs more. Arguments as :func:`estimate`'s."""

    def peak(batch: int) -> int:
        m = estimate(shape, frames, height, width, dtype_bytes, tile=tile, margin=margin, offload=offload, on_cpu=on_cpu,
                     exact=exact, flow_batch=batch, emitted=emitted)  # fmt: skip
        return m.total if on_cpu else m.device

    return FLOW_BATCH_PIXELS if peak(FLOW_BATCH_PIXELS) <= free_bytes * BUDGET_FRACTION else 1


def _reason(window: int, max_window: int, last_resort: bool, tile: int | None, exact: bool, offload: bool, batch: int,
            margin: int, first: str, whole: str, this: str) -> str:  # fmt: skip
    """:attr:`Plan.reason`: the choice, and what the choices before it would have needed."""
    how = " with features offloaded to host memory" if offload else ""
    if batch != FLOW_BATCH_PIXELS:
        how += ", SPyNet one pair at a time"
    short = f" (shorter than {MIN_WINDOW}, the last resort: every frame sees fewer neighbours)" if last_resort else ""
    if tile is None:
        if window == max_window and not offload:
            return f"whole frames, window {window}{how}: {this}"
        return f"window {window}{short}{how}: window {max_window} would need {first}; this needs {this}"
    kind = "step-wise tiles (exact)" if exact else f"independent tiles (margin {margin} px)"
    return f"{tile} px {kind}, window {window}{short}{how}: whole frames would need at least {whole}; this needs {this}"


def trim_heap() -> None:
    """Give freed heap memory back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    The engine calls it after every pass on the CPU: without it, glibc's heaps keep the freed
    transients of passes, fragmented, and resident memory crept up over a long clip (c16n2 x4 on
    96x64 frames: 1252 MiB at frame 200, 1372 MiB at frame 2016; with it 1053 MiB and 1041 MiB).
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def measure_peak(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[Any, int]:
    """Run ``fn()`` and measure the peak memory it added, in bytes.

    CPU (Linux): freed heap memory is returned to the system first (``malloc_trim``), the
    process's resident-set high-water mark is reset (``/proc/self/clear_refs``), and the peak
    is ``VmHWM`` during the call minus ``VmRSS`` before it. Where the mark cannot be reset, a
    thread samples ``VmRSS`` every millisecond instead. CUDA: ``torch.cuda.max_memory_allocated``
    minus the memory allocated before.

    Returns:
        ``(fn's result, peak bytes added)``.

    Raises:
        OSError: on a CPU without ``/proc/self/status`` (not Linux).
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result, torch.cuda.max_memory_allocated(device) - before
    trim_heap()
    before = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _status_kib("VmRSS"))
                time.sleep(0.001)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            result = fn()
        finally:
            done.set()
            sampler.join()
        return result, (peak[0] - before) * 1024
    result = fn()
    return result, (_status_kib("VmHWM") - before) * 1024
