"""Tools around the networks: evaluation with the papers' protocol, training, the benchmark.

* :mod:`~vsvsrpp.tools.degradations`: the BI and BD degradations of the benchmarks;
* :mod:`~vsvsrpp.tools.evaluate`: PSNR/SSIM evaluation of a method on ground-truth clips;
* :mod:`~vsvsrpp.tools.train`: training and fine-tuning with the paper's recipe;
* :mod:`~vsvsrpp.tools.bench`: model-only, end-to-end and reference timings.
"""
