"""docs/configuration.md is what tests/docs/configuration.py renders from the settings classes."""

from __future__ import annotations

import difflib

from pydantic_settings import EnvSettingsSource

from tests.docs.configuration import DOC, REGENERATE, env_names, render, settings_classes


def test_configuration_doc_is_current() -> None:
    expected = render()
    actual = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if actual != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    actual.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/configuration.md",
                    "render()",
                )
            )[:60]
        )
        raise AssertionError(
            "docs/configuration.md is out of date with the settings classes; regenerate it "
            f"from the repository root:\n\n    {REGENERATE}\n\n{diff}"
        )


def test_settings_classes_are_found() -> None:
    classes = settings_classes()
    assert classes, "no BaseSettings subclass found in shared, services, ui"
    assert len({(c.__module__, c.__qualname__) for c in classes}) == len(classes)


def test_env_names_are_the_ones_pydantic_settings_reads() -> None:
    """The documented variable names agree with pydantic-settings' own resolution."""
    for cls in settings_classes():
        source = EnvSettingsSource(cls)
        for name, field in cls.model_fields.items():
            theirs = [env for _, env, _ in source._extract_field_info(field, name)]
            ours = [env.lower() for env in env_names(cls, name, field)]
            assert ours == list(dict.fromkeys(theirs)), f"{cls.__qualname__}.{name}"
