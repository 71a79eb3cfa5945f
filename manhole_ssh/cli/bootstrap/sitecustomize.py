"""First on ``PYTHONPATH`` in the children of ``manhole-ssh run`` (see
:mod:`manhole_ssh.cli.children`): install a manhole in a child that serves, then run the
``sitecustomize`` this module shadows, if there is one, as Python would have."""

import importlib.machinery
import importlib.util
import os
import sys


def _run_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    path = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


try:
    from manhole_ssh.cli.children import install_in_serving_child

    install_in_serving_child()
except Exception as error:  # manhole_ssh gone from this interpreter: run on without it
    print(f"manhole-ssh: no manhole in process {os.getpid()}: {error!r}", file=sys.stderr)
_run_shadowed_sitecustomize()
