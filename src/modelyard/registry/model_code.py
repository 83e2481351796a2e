"""The file MLflow runs to load a registered version (models-from-code: `log_model` is given
this file's path as `python_model`). It imports only the project's own source, which the
version ships (`code_paths`); the model itself is rebuilt from a state dict and JSON."""

from mlflow.models import set_model

from modelyard.registry.serving import RawInputModel

set_model(RawInputModel())
