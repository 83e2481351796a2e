"""Reading the registry: which version has an alias, and every version as a table row.
Light on imports (MLflow only), so `modelyard models list` answers without torch."""

from __future__ import annotations

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def chosen_version(client: MlflowClient, name: str, alias: str | None,
                   version: str | None) -> ModelVersion:
    """The version a user named (`version`, else `alias`, else champion); when there is none,
    an error that says which versions and aliases exist and how to pick one."""
    from modelyard.errors import ConfigError

    try:
        model = client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        raise ConfigError(f"no registered model {name!r}; there are: "
                          f"{', '.join(known) or 'none'}") from None
    try:
        if version is not None:
            return client.get_model_version(name, version)
        return client.get_model_version_by_alias(name, alias or "champion")
    except MlflowException:
        pass
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    aliases = ", ".join(f"{a} (v{v})" for a, v in sorted(model.aliases.items())) or "none"
    wanted = (f"no version {version}" if version is not None
              else f"no version with the alias {alias or 'champion'!r}")
    raise ConfigError(f"{name} has {wanted}; aliases: "
                      f"{aliases}; versions: {', '.join(map(str, versions)) or 'none'}; "
                      "choose with --alias <alias> or --version <n>")


def list_versions(client: MlflowClient, name: str | None = None) -> list[dict[str, str]]:
    """Every registered version (of one model, or all), newest first, as table rows."""
    names = [name] if name else sorted(m.name for m in client.search_registered_models())
    rows = []
    for model_name_ in names:
        aliases = client.get_registered_model(model_name_).aliases
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        versions = client.search_model_versions(f"name='{model_name_}'")
        for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
            metrics = {k.removeprefix("metric."): val for k, val in v.tags.items()
                       if k.startswith("metric.test_") and not k.endswith("_loss")}
            rows.append({
                "model": model_name_,
                "version": str(v.version),
                "aliases": ",".join(sorted(by_version.get(str(v.version), []))),
                "metrics": " ".join(f"{k}={val}" for k, val in sorted(metrics.items())),
                "data": (v.tags.get("dvc.data_md5") or v.tags.get("data.manifest_sha256", ""))[:12],
                "git": v.tags.get("git.sha", "")[:8],
            })
    return rows


def load_checked(version: ModelVersion, config: dict | None = None):
    """A registered version as a pyfunc model, refused when the weights it ships are not the
    ones its `weights_sha256` tag recorded at registration. (The model checks its weights file
    against its own model config when it loads; this checks that config against the registry.)
    `config`: model config values to use instead of the logged ones, where the version has
    such a key (older versions lack the serving settings)."""
    import mlflow

    from modelyard.errors import ModelyardError

    uri = f"models:/{version.name}/{version.version}"
    if config:
        from mlflow.models import get_model_info

        logged = get_model_info(uri).flavors.get("python_function", {}).get("config") or {}
        config = {k: v for k, v in config.items() if k in logged} or None
    try:
        model = mlflow.pyfunc.load_model(uri, model_config=config)
    except MlflowException as err:
        if "using pickle is disallowed" not in str(err):
            raise
        raise ModelyardError(  # a version logged before modelyard logged its models as code
            f"{uri} was logged as a pickled Python object, before modelyard logged models "
            f"as code, and is not loaded: take its aliases off it (MLflow UI) and promote a "
            f"version logged since") from None
    shipped = (model.model_config or {}).get("weights_sha256")
    recorded = version.tags.get("weights_sha256")
    if not recorded or shipped != recorded:
        raise ModelyardError(
            f"models:/{version.name}/{version.version}: its weights hash "
            f"{str(shipped)[:12]}… is not the {str(recorded)[:12]}… registered in its "
            f"weights_sha256 tag; refusing a tampered model"
        )
    return model


def predict_in_batches(model, inputs):
    """A loaded version's predictions for any number of rows, images or texts, in requests of
    its own `max_rows` (the limit is on one request, not on a file or a test split)."""
    import pandas as pd

    from modelyard.registry.contract import Limits

    batch = Limits.from_config(model.model_config or {}).max_rows  # as the model sees it
    if len(inputs) <= batch:
        return model.predict(inputs)
    return pd.concat([model.predict(inputs[start:start + batch])
                      for start in range(0, len(inputs), batch)], ignore_index=True)
