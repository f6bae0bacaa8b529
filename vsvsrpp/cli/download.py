"""``vsvsrpp download``: fetch pretrained weights into the cache and print their paths."""

from __future__ import annotations

import argparse
import sys

from ..errors import EXIT_FAILURE, EXIT_OK, VsvsrppError


NAME = "download"
HELP = "download pretrained weights"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help=HELP, description="Download pretrained weights into the cache (verified: size and sha256) and print their paths. "
        "Files already in the cache are checked, not downloaded again; a damaged one is an error (--force replaces it). "
        "A download that stalls (less than 1 KiB in VSVSRPP_STALL_TIMEOUT seconds, default 30) or takes longer "
        "than VSVSRPP_DOWNLOAD_TIMEOUT seconds (default 1800) fails and leaves nothing in the cache.")
    p.add_argument("names", nargs="*", metavar="NAME", help="model names (default: the default model)")
    p.add_argument("--all", action="store_true", help="download every model in the registry")
    p.add_argument("--force", action="store_true", help="download again even if the file is cached (repairs a damaged one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub import download, registry

    if args.all:
        names = list(registry.MODELS)
    elif args.names:
        names = list(dict.fromkeys(args.names))
    else:
        names = [registry.DEFAULT_MODEL]
    unknown = [n for n in names if n not in registry.MODELS]
    if unknown:
        raise VsvsrppError(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(registry.MODELS)}")
    failed = 0
    for name in names:
        info = registry.MODELS[name]
        try:
            problem = None if args.force else download.cached_problem(info)
            if problem is not None:
                raise download.DownloadError(problem)
            path = download.download(info, force=args.force)
        except (download.DownloadError, OSError) as e:
            sys.stderr.write(f"vsvsrpp: error: {name}: {e}\n")
            failed += 1
            continue
        print(path)
        sys.stdout.flush()
    return EXIT_FAILURE if failed else EXIT_OK
