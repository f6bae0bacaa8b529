"""Distributed runs on Ray: a film or a batch of files cut into segments on window borders,
computed by Ray tasks on any number of GPUs or machines, and joined into output identical to a
single-process run.

* :mod:`~vsvsrpp.runtime.segments` (pure) plans the segments;
* :mod:`.task` computes one segment on a worker into a file of the work directory;
* :mod:`.workdir` holds the work directory's layout, manifests and resume checks;
* :mod:`.assemble` joins a file's segments, muxes the audio and checks the frame count;
* :mod:`.driver` plans, schedules the tasks on Ray, follows them and joins each file.

Ray is an optional extra (``pip install 'vsvsrpp[ray]'``); only :mod:`.driver` imports it, when
a run starts.
"""
