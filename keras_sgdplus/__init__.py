"""keras-sgdplus: the SGD optimizer for Keras, with momentum, Nesterov, decay and XLA.

```python
from keras_sgdplus import SGDPlus

model.compile(optimizer=SGDPlus(learning_rate=0.1, momentum=0.9, nesterov=True), loss="mse")
```
"""

from keras_sgdplus.sgd_plus import SGDPlus

__all__ = ["SGDPlus", "__version__"]
__version__ = "0.1.0"
