"""keras-sgdplus: the SGD optimizer for Keras, with momentum, Nesterov, decay and XLA.

```python
from keras_sgdplus import SGDPlus

model.compile(optimizer=SGDPlus(learning_rate=0.1, momentum=0.9, nesterov=True), loss="mse")
```

Importing `SGDPlus` registers it with Keras, so `keras.saving.load_model` restores a model
saved with it. `import keras_sgdplus` alone loads Keras (and its backend) only when Keras is
already imported, as in any script that uses Keras, and registers `SGDPlus` then too;
otherwise `SGDPlus` is imported on first use (PEP 562). So the `sgdplus` command and the
dashboard, which live in this package (`keras_sgdplus.lab`, `keras_sgdplus.dashboard`), start
without a backend where they need none.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

__all__ = ["SGDPlus", "__version__"]
__version__ = "0.1.0"

if TYPE_CHECKING or "keras" in sys.modules:
    from keras_sgdplus.sgd_plus import SGDPlus


def __getattr__(name: str) -> Any:
    if name == "SGDPlus":
        from keras_sgdplus.sgd_plus import SGDPlus

        globals()["SGDPlus"] = SGDPlus
        return SGDPlus
    raise AttributeError(f"module 'keras_sgdplus' has no attribute {name!r}")
