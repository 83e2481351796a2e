"""Library notices are silenced by module and message, never by category."""

from __future__ import annotations

import logging
import warnings

import pytest

from modelyard.quiet import silence_library_notices, without_forced_notice


def test_known_notices_are_silenced_and_every_other_warning_still_shows() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_library_notices()
        for module, message in (("mlflow.types.utils", "Hint: Inferred schema contains integer "
                                 "column(s). Integer columns ..."),
                                ("modelyard.data", "Hint: Inferred schema contains integer "
                                 "column(s), said by someone else"),
                                ("mlflow.types.utils", "another hint from MLflow")):
            warnings.warn_explicit(message, UserWarning, f"{module}.py", 1, module=module)
    assert [str(w.message) for w in caught] == [
        "Hint: Inferred schema contains integer column(s), said by someone else",
        "another hint from MLflow"]


def test_lightnings_advert_is_dropped_and_its_other_info_kept(caplog) -> None:
    silence_library_notices()
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("💡 Tip: For seamless cloud logging, try installing litlogger")
        log.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]


def test_mlflow_s_own_narration_is_dropped_by_logger_and_its_warnings_kept(caplog) -> None:
    silence_library_notices()
    pyfunc = logging.getLogger("mlflow.pyfunc")
    validation = logging.getLogger("mlflow.models.evaluation.validation")
    with caplog.at_level(logging.INFO):
        pyfunc.info("Validating input example against model signature")
        validation.info("Validating candidate model metrics against baseline")
        pyfunc.warning("Validating input example against model signature failed: ...")
        logging.getLogger("modelyard.x").info("Validating input example against model signature")
        classifier = logging.getLogger("mlflow.models.evaluation.evaluators.classifier")
        classifier.warning("According to the evaluation dataset label values, the model type "
                           "looks like None, but you specified model type 'classifier'. ...")
        classifier.info("The evaluation dataset is inferred as binary dataset, positive ...")
        validation.info("Model validation passed!")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("mlflow.pyfunc", "Validating input example against model signature failed: ..."),
        ("modelyard.x", "Validating input example against model signature")]


def test_every_notice_shows_when_asked(monkeypatch, caplog) -> None:
    monkeypatch.setenv("MODELYARD_LIBRARY_NOTICES", "show")
    log = logging.getLogger("mlflow.models.evaluation.default_evaluator")
    for notice_filter in list(log.filters):  # as a fresh process has it
        log.removeFilter(notice_filter)
    silence_library_notices()
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("Testing metrics on first row...")
    assert [r.getMessage() for r in caplog.records] == ["Testing metrics on first row..."]


def forced_notices(tag: str) -> None:
    """As MLflow warns about a predict without type hints: in colour, under its own filter."""
    with warnings.catch_warnings():
        warnings.simplefilter("once", category=UserWarning)
        warnings.warn(f"\x1b[33mAdd type hints to the `predict` method ({tag})\x1b[0m",
                      UserWarning, stacklevel=1)
        warnings.warn(f"a warning of this project's own ({tag})", UserWarning, stacklevel=1)


@pytest.mark.parametrize("show", [False, True])
def test_a_notice_forced_through_a_librarys_own_filter_is_dropped_and_others_kept(
        show: bool, monkeypatch) -> None:
    if show:
        monkeypatch.setenv("MODELYARD_LIBRARY_NOTICES", "show")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with without_forced_notice("Add type hints to the `predict` method"):
            forced_notices(f"show={show}")
    shown = [str(w.message) for w in caught]
    assert f"a warning of this project's own (show={show})" in shown
    assert any("Add type hints" in m for m in shown) == show
