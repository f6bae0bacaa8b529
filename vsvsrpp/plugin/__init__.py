"""The VapourSynth plugin: the filter entry points and everything only they need.

* :mod:`~vsvsrpp.plugin.entry`: ``BasicVSRPP``, ``BasicVSR``, ``IconVSR``, ``RealBasicVSR`` (and ``apply``);
* :mod:`~vsvsrpp.plugin.args`: the one argument list and its validation;
* :mod:`~vsvsrpp.plugin.colors`: colour properties and conversions to and from the network's RGB;
* :mod:`~vsvsrpp.plugin.graph`: the window graph (scene cuts, window cache, passes);
* :mod:`~vsvsrpp.plugin.transfer`: VapourSynth frames <-> tensors.

Importing this package does not import VapourSynth; its modules do.
"""
