"""Profiles: named sets of chapter parameters (``book/profiles.yml``).

``smoke`` runs in seconds (the tests), ``quick`` in minutes on a 2-core CPU
(the default of ``make book``), ``full`` at the original recipes' scale on a
GPU. A chapter's ``parameters`` cell holds its quick values; a profile sets
only what differs, and papermill injects the result.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from inpaintlib.errors import ConfigError


def load_profiles(path: str | Path) -> dict[str, dict[str, dict]]:
    """Read a profiles file: profile name -> chapter name -> parameters."""
    try:
        profiles = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read the profiles file {path}: {error}") from None
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"{path} must map each profile name to chapters and their parameters")
    return profiles


def parse_value(text: str):
    """A command-line parameter value as YAML reads it: ``3`` is an int, ``true`` a bool."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def chapter_parameters(
    profiles: dict, profile: str, declared: dict[str, set[str]], data: str | None = None, overrides: dict | None = None
) -> dict[str, dict]:
    """The parameters papermill gives each chapter.

    Parameters
    ----------
    profiles : dict
        From :func:`load_profiles`.
    profile : str
        The profile to apply.
    declared : dict
        Chapter name -> names in its ``parameters`` cell.
    data : str, optional
        A data spec for every chapter that has a ``data`` parameter.
    overrides : dict, optional
        Parameter name -> value, for every chapter that declares it.

    Returns
    -------
    dict
        Chapter name -> parameters. Unknown profiles, chapters and parameters
        raise :class:`ConfigError` listing the valid names.
    """
    if profile not in profiles:
        raise ConfigError(f"unknown profile {profile!r}: use one of {', '.join(profiles)}")
    overrides = dict(overrides or {})
    if data is not None:
        overrides["data"] = data
    chosen = {chapter: {} for chapter in declared}
    for chapter, values in (profiles[profile] or {}).items():
        if chapter not in declared:
            raise ConfigError(f"profile {profile!r} names an unknown chapter {chapter!r}: the chapters are {', '.join(declared)}")
        unknown = set(values or {}) - declared[chapter]
        if unknown:
            raise ConfigError(
                f"profile {profile!r} sets unknown parameter(s) {', '.join(sorted(unknown))} of {chapter}: "
                f"its parameters are {', '.join(sorted(declared[chapter]))}"
            )
        chosen[chapter].update(values or {})
    every_name = set().union(*declared.values()) if declared else set()
    for name, value in overrides.items():
        if name not in every_name:
            raise ConfigError(f"unknown parameter {name!r}: the chapters' parameters are {', '.join(sorted(every_name))}")
        for chapter, names in declared.items():
            if name in names:
                chosen[chapter][name] = value
    return chosen
