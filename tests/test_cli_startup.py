"""`tunesmith --help`, every command's --help and `tunesmith models` import neither torch nor
transformers (torch alone took ~2.5 s of a 3 s `--help`): checked in a fresh interpreter."""
import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "datasets", "sklearn", "matplotlib")

SCRIPT = r"""
import argparse, contextlib, io, json, sys
from tunesmith.cli import build_parser, main

def subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}

argvs = [["--help"], ["models"], ["methods"]]
for name, parser in subcommands(build_parser()).items():
    argvs.append([name, "--help"])
    argvs += [[name, sub, "--help"] for sub in subcommands(parser)]
out = {}
for argv in argvs:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
    out[" ".join(argv)] = [m for m in %r if m in sys.modules]
print(json.dumps(out))
""" % (HEAVY,)


def test_help_and_models_import_no_heavy_library():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "finetune --help" in seen and "bench infer --help" in seen and len(seen) > 20
    assert {argv: mods for argv, mods in seen.items() if mods} == {}
