"""Cheap garbage collections in the dashboard's server: the libraries' objects frozen out.

Streamlit collects garbage after every script run, each fragment rerun of the live view
included: `gc.collect(2)` (its `runner.postScriptGC` option), then, since Keras is loaded,
`keras.backend.clear_session()`, which collects again. A full collection walks every object
the collector tracks, and Keras with its backend brings about 275,000 (JAX) to 460,000
(TensorFlow): 140-250 ms a collection on the 2-core CI machine, so 0.3-0.5 s of CPU for
each refresh of the live view, taken from the training worker beside it.

Those objects (modules, classes, functions, the backends' registries) live as long as the
server. `gc.freeze()` moves every tracked object into the permanent generation, which later
collections skip (Python's `gc` documentation, "gc.freeze"); a collection after it walks only
what the pages made since (`benchmarks/server_gc.py` measures both). Reference counting
still frees every object as before; only a reference cycle among objects alive at the
freeze is never collected, which is why the freeze happens once, right after the imports,
before any page makes data.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterable

#: What every page of the dashboard loads: Keras with its backend, the charts, the tables.
DASHBOARD_LIBRARIES = (
    "keras",
    "keras_sgdplus",
    "keras_sgdplus.lab.charts",
    "keras_sgdplus.lab.training",
    "keras_sgdplus.lab.landscapes",
    "altair",
    "pandas",
    "streamlit",
)

_frozen = False


def load_and_freeze(modules: Iterable[str] = DASHBOARD_LIBRARIES) -> bool:
    """Import `modules`, then freeze every object tracked so far, once per process.

    Returns True the call that froze, False after (a Streamlit server calls it at every
    run of its script). Garbage from the imports is collected first, so it is not frozen.
    """
    global _frozen
    if _frozen:
        return False
    for name in modules:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
    _frozen = True
    return True
