"""Where training photos come from, and under which licence each one may be used.

Every photo a training set is built from must have a known author and licence, so that the
weights trained on it can carry the attribution its licence asks for. Two sources are known:

* :data:`DEBIAN_PHOTOS`: openly licensed photographs shipped in Debian packages (fetched by
  ``scripts/get_open_photos``), with author and licence as each package's ``copyright`` file
  states them for that file;
* a ``sources.json`` in a photo folder, for your own photos: a list of objects with ``file``,
  ``author``, ``license`` and ``origin`` (where the file came from).

:data:`DEFAULT_LICENSES` are the licences a build accepts unless told otherwise: public-domain
dedications and attribution-only licences. Share-alike and copyleft licences (CC-BY-SA, GPL) are
left out by default because whether they reach weights trained on the photos is unsettled; ask
for them explicitly (``licenses=``) when that is acceptable for your use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..evaluate import IMAGE_EXTENSIONS

__all__ = ["DEBIAN_PHOTOS", "DEFAULT_LICENSES", "Photo", "PhotoSource", "find_photos"]


@dataclass(frozen=True)
class PhotoSource:
    """Who made a photo and how it may be used.

    Attributes:
        file: the file name (no folder).
        author: the copyright holder as the source names them.
        license: an SPDX identifier (``"CC-BY-4.0"``, ``"CC0-1.0"``, ``"BSD-3-Clause"``, ...).
        origin: where the file came from (a Debian package and its path, or a URL).
    """

    file: str
    author: str
    license: str
    origin: str


@dataclass(frozen=True)
class Photo:
    """A photo file on disk with its :class:`PhotoSource`."""

    path: Path
    source: PhotoSource

    def record(self) -> dict:
        """The manifest's record of this photo (plain JSON values)."""
        return {"path": str(self.path), **asdict(self.source)}


def _lomiri(file: str, author: str, license: str, package: str = "lomiri-wallpapers-16.04") -> PhotoSource:
    return PhotoSource(file, author, license, f"Debian {package}, /usr/share/backgrounds/{file} (upstream gitlab.com/ubports/development/core/lomiri-wallpapers)")


#: Photographs in Debian packages, with the author and licence given for each file by the
#: package's ``/usr/share/doc/<package>/copyright`` (lomiri-wallpapers 20.04.0-2,
#: libjxl-testdata 0.0~git20230110.d6168ff-1). The share-alike ones are listed so that a build
#: that accepts them records them correctly.
DEBIAN_PHOTOS: dict[str, PhotoSource] = {
    s.file: s
    for s in (
        _lomiri("aitzgorri_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, 2018", "CC-BY-4.0"),
        _lomiri("friends_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, 2018", "CC-BY-4.0"),
        _lomiri("life_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, 2018", "CC-BY-4.0"),
        _lomiri("picosdeeuropa_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, 2018", "CC-BY-4.0"),
        _lomiri("sunset_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, 2018", "CC-BY-4.0"),
        _lomiri("Picture_0B_by_freespace.jpg", 'Trevor "Freespace", 2018', "CC-BY-4.0"),
        _lomiri("Picture_1A_by_freespace.jpg", 'Trevor "Freespace", 2018', "CC-BY-4.0"),
        _lomiri("umang_by_Abhishek_Mudgal.jpg", "Abhishek Mudgal, 2018", "CC-BY-4.0"),
        _lomiri("Wine_by_Jakkub_Mede.jpg", "Jakub Mede, 2018", "CC-BY-4.0"),
        _lomiri("seeding_by_Clements_Engelhardt.jpg", "Clemens Engelhardt, 2018", "CC0-1.0"),
        _lomiri("Bridge_by_Sander_Klootwijk.jpg", "Sander Klootwijk, 2018", "CC-BY-SA-4.0"),
        _lomiri("Dragonfly_by_Bolly.jpg", '"Bolly", 2018', "CC-BY-SA-4.0"),
        _lomiri("free_by_Peter_Nerlich.jpg", "Peter Nerlich, 2018", "CC-BY-SA-4.0"),
        _lomiri("greentock_by_Peter_Nerlich.jpg", "Peter Nerlich, 2018", "CC-BY-SA-4.0"),
        _lomiri("analogpattern_by_Peter_Nerlich.jpg", "Peter Nerlich, 2018", "CC-BY-SA-4.0"),
        _lomiri("Fossa_by_Jasper_Roks.jpg", "Jasper Roks, 2023", "CC-BY-SA-3.0", "lomiri-wallpapers-20.04"),
        _lomiri("Infinite-Sea_by_Aury88.jpg", "Aury88, 2019", "CC-BY-SA-3.0", "lomiri-wallpapers-20.04"),
        _lomiri("Kleiber_by_Lukas_Baubkus.jpg", "Lukas Baubkus, 2021", "CC-BY-SA-3.0", "lomiri-wallpapers-20.04"),
        _lomiri("Painting-Colors_by__herobrine7gamer.jpg", "HEROBRINE7GAMER, 2021", "CC-BY-SA-3.0", "lomiri-wallpapers-20.04"),
        PhotoSource(
            "flower.png",
            "the JPEG XL Project Authors",
            "BSD-3-Clause",
            "Debian libjxl-testdata, /usr/share/libjxl-testdata/jxl/flower/flower.png (upstream github.com/libjxl/testdata)",
        ),
    )
}

#: Licences accepted by default: public domain and attribution-only.
DEFAULT_LICENSES = ("CC0-1.0", "CC-BY-4.0", "CC-BY-3.0", "BSD-3-Clause", "MIT", "Apache-2.0")

#: The file in a photo folder that names the sources of its photos.
SOURCES_FILE = "sources.json"


def _read_sources(folder: Path) -> dict[str, PhotoSource]:
    path = folder / SOURCES_FILE
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
        return {e["file"]: PhotoSource(e["file"], e["author"], e["license"], e["origin"]) for e in entries}
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: expected a JSON list of objects with file, author, license and origin ({e})") from None


def find_photos(folders: Iterable[str | os.PathLike], licenses: Iterable[str] = DEFAULT_LICENSES) -> list[Photo]:
    """The photos in ``folders`` whose source is known and whose licence is accepted.

    A file's source is looked up first in its folder's ``sources.json``, then in
    :data:`DEBIAN_PHOTOS` by file name. Files of an accepted source are returned in a fixed order
    (folder order, then file name), so a build from the same folders is the same build.

    Args:
        folders: folders of image files (not searched recursively).
        licenses: SPDX identifiers to accept.

    Returns:
        The accepted photos.

    Raises:
        FileNotFoundError: a folder does not exist.
        ValueError: a folder holds an image of unknown source (the message names it and says how
            to declare it), a ``sources.json`` is malformed, or no photo is accepted.
    """
    accepted = set(licenses)
    photos: list[Photo] = []
    refused: list[str] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise FileNotFoundError(f"photo folder not found: {folder}")
        own = _read_sources(folder)
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
            source = own.get(path.name) or DEBIAN_PHOTOS.get(path.name)
            if source is None:
                raise ValueError(
                    f"{path}: unknown author and licence; list it in {folder / SOURCES_FILE} "
                    '([{"file": ..., "author": ..., "license": ..., "origin": ...}]) or remove it'
                )
            if source.license in accepted:
                photos.append(Photo(path, source))
            else:
                refused.append(f"{path.name} ({source.license})")
    if not photos:
        why = f"; not accepted: {', '.join(refused)}" if refused else ""
        raise ValueError(f"no photo with an accepted licence ({', '.join(sorted(accepted))}) in {', '.join(map(str, folders))}{why}")
    return photos
