"""LightningModules, one per task. They know nothing of MLflow or DVC."""
