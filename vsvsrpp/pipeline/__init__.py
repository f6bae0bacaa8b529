"""The file pipeline, below the command line and the cluster: a source file in, an encoded file out.

* :mod:`~vsvsrpp.pipeline.spec`: :class:`RunSpec` and :class:`Encoding`, what a run is (plain data);
* :mod:`~vsvsrpp.pipeline.source`: opening a source (BestSource, the frame-rate check, its
  colours) and the network clip;
* :mod:`~vsvsrpp.pipeline.timing`: is a source's timing constant enough to keep;
* :mod:`~vsvsrpp.pipeline.ffmpeg`: all ffmpeg and ffprobe knowledge (colour tags, the encode
  command, probes);
* :mod:`~vsvsrpp.pipeline.encode`: feeding ffmpeg, watching it and the output, atomic outputs;
* :mod:`~vsvsrpp.pipeline.signals`: SIGINT/SIGTERM/SIGHUP end a run promptly;
* :mod:`~vsvsrpp.pipeline.run`: a run of files in this process.

:mod:`vsvsrpp.cli` maps argv to a :class:`RunSpec` and errors to exit codes; :mod:`vsvsrpp.cluster`
runs a :class:`RunSpec` on Ray. Nothing here imports either. Importing this package imports
neither VapourSynth nor torch; its functions do.
"""

from .spec import LOSSLESS, Encoding, RunSpec

__all__ = ["LOSSLESS", "Encoding", "RunSpec"]
