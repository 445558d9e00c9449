"""`tunesmith ui`: a local web app over the same core as the CLI.

Data -> Choose -> Train -> Report -> Try -> Serve. Pages are server-rendered (Jinja2) with a small
vanilla-JS client in static/ that polls a JSON API (no CDN, fonts or analytics: every byte is served
from this package). Long work runs elsewhere: fine-tuning, compare and serve are the real CLI in a
child process (jobs.py), so state lives in run directories and a restarted UI finds every run.
"""
