"""Datasets for the lab: a registry of built-in sets, and loaders for the user's own files.

Every loader returns a `Dataset`: float32 inputs, integer class ids (int64) for classification
or float32 targets for regression, already split into a training and a validation part.

- **bundled** (offline, from scikit-learn): digits, iris, wine, breast_cancer, diabetes.
- **generated** 2-D sets like TensorFlow Playground's: circle, xor, gaussian, spiral, and the
  regression "plane". Seeded; `noise` controls how much the classes overlap.
- **download** (through Keras, cached in `$KERAS_HOME/datasets`, `~/.keras/datasets` by
  default): mnist, fashion_mnist, cifar10. The same file names and folders as
  `keras.datasets.*.load_data()`, so files either one cached are used by both. Images stay
  images, `(28, 28, 1)` and `(32, 32, 3)` (channels last), scaled to [0, 1].
- **user**: `load_csv` (one column is the target) and `load_npz` (arrays `x` and `y`).

Splitting is seeded and deterministic, stratified by class for classification where every
class has enough samples. With `standardize=True`, inputs are shifted and scaled to mean 0 and
standard deviation 1 with the statistics of the *training part only* (applied to both parts):
per feature for tables, per colour channel for images (4-D inputs); constant features are only
shifted. Regression targets are standardised the same way (so losses have a comparable scale
across datasets); `Dataset.y_mean` and `Dataset.y_std` map predictions back.

Every problem with the input (an unknown name, a missing file, a bad value) raises
`DatasetError`, a `ValueError` whose message names the dataset, file or column and says what
to do.

The modules, one job each (this file only re-exports their public names):

- `registry`: `DatasetInfo`, `Dataset`, `DatasetError`, `DATASETS`, `list_datasets`.
- `checks`: the argument checks every loader shares.
- `builtin`: `load_dataset`, a registry name to a `Dataset`, through the three modules below.
- `generated`: `generate_2d`, the 2-D sets.
- `bundled`: scikit-learn's sets.
- `downloads`: the Keras downloads, `keras_cache_dir` and `is_cached`.
- `user_files`: `load_csv` and `load_npz`.
- `splits`: the train/validation split and standardisation (`training_size`), for all loaders.
"""

from keras_sgdplus.lab.datasets.builtin import load_dataset
from keras_sgdplus.lab.datasets.downloads import is_cached, keras_cache_dir
from keras_sgdplus.lab.datasets.generated import PLANE_COEFFICIENTS, generate_2d
from keras_sgdplus.lab.datasets.registry import (
    DATASETS,
    DEFAULT_GENERATED_SAMPLES,
    TASKS,
    Dataset,
    DatasetError,
    DatasetInfo,
    list_datasets,
)
from keras_sgdplus.lab.datasets.splits import training_size
from keras_sgdplus.lab.datasets.user_files import MAX_INFERRED_CLASSES, load_csv, load_npz

__all__ = [
    "DATASETS",
    "DEFAULT_GENERATED_SAMPLES",
    "MAX_INFERRED_CLASSES",
    "PLANE_COEFFICIENTS",
    "TASKS",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "generate_2d",
    "is_cached",
    "keras_cache_dir",
    "list_datasets",
    "load_csv",
    "load_dataset",
    "load_npz",
    "training_size",
]
