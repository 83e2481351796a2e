"""modelyard: Lightning models composed by Hydra, tracked by MLflow, versioned by DVC."""

__version__ = "0.1.0"
