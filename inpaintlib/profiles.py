"""Profiles: named sets of chapter parameters (``inpaintlib/profiles.yml``).

``smoke`` runs in seconds (the tests), ``quick`` in minutes on a 2-core CPU
(the default of ``make book``), ``full`` at the original recipes' scale on a
GPU. A chapter's ``parameters`` cell holds its quick values; a profile sets
only what differs. ``inpaint book`` injects the result with papermill; a
chapter opened by hand (on Colab, say) applies one itself with
:func:`.select_profile`, the full one by default when there is a GPU.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from inpaintlib.errors import ConfigError

#: Package data, so that a pip-installed inpaintlib (Colab) has the profiles without the book.
PROFILES_FILE = Path(__file__).with_name("profiles.yml")
#: The chapter parameter that picks a profile; not a value a profile or ``-p`` can set.
PROFILE_PARAMETER = "profile"
#: ``profile`` values that are not profiles, ``auto`` (full on a GPU or TPU, else the cell's) and ``cell``.
AUTO, CELL = "auto", "cell"
#: The profile ``auto`` picks when there is an accelerator.
ACCELERATOR_PROFILE = "full"
#: The profile that spells out the chapters' own values (their parameters cells') of what
#: ``auto`` would upgrade, so that it upgrades a value only where the reader left it.
OWN_VALUES_PROFILE = "quick"
#: What ``inpaint book`` sets beside ``profile``: the ``-p`` values it gave the chapter. Its
#: presence says that the chapter's values are final, as the build resolved them.
BUILD_OVERRIDES = "profile_overrides"
#: The chapter whose profile values are each model kind's recipe (its steps, batch, data and options).
RECIPE_CHAPTERS = {"unet": "02_unet", "vaegan": "03_vaegan"}


def load_profiles(path: str | Path = PROFILES_FILE) -> dict[str, dict[str, dict]]:
    """Read a profiles file (by default the package's): profile name -> chapter name -> parameters."""
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
        From :func:`.load_profiles`.
    profile : str
        The profile to apply.
    declared : dict
        Chapter name -> names in its ``parameters`` cell.
    data : str, optional
        A data spec for every chapter that has a ``data`` parameter.
    overrides : dict, optional
        Parameter name -> value, for every chapter that declares it; ``"CHAPTER:NAME"`` -> value
        for that chapter alone (see :func:`.override_targets`).

    Returns
    -------
    dict
        Chapter name -> parameters. A chapter that has a ``profile`` parameter
        gets the profile's name and ``profile_overrides``, its ``-p`` values:
        these values are final, and its set-up cell (:func:`.select_profile`)
        applies no profile on top of them (``auto``: full on a GPU) but names
        them in the chapter's scale line. Unknown profiles, chapters and
        parameters raise :class:`.ConfigError` listing the valid names;
        ``profile`` itself is set with the ``profile`` argument only.
    """
    if profile not in profiles:
        raise ConfigError(f"unknown profile {profile!r}: use one of {', '.join(profiles)}")
    overrides = dict(overrides or {})
    asked = {chapter: {} for chapter in declared}  # chapter -> its -p values, for its scale line
    if data is not None:
        overrides["data"] = data
    settable = {chapter: set(names) - {PROFILE_PARAMETER} for chapter, names in declared.items()}
    chosen = {chapter: {} for chapter in declared}
    for chapter, values in (profiles[profile] or {}).items():
        if chapter not in declared:
            raise ConfigError(f"profile {profile!r} names an unknown chapter {chapter!r}: the chapters are {', '.join(declared)}")
        unknown = set(values or {}) - settable[chapter]
        if unknown:
            raise ConfigError(
                f"profile {profile!r} sets unknown parameter(s) {', '.join(sorted(unknown))} of {chapter}: "
                f"its parameters are {', '.join(sorted(settable[chapter]))}"
            )
        chosen[chapter].update(values or {})
    targets = override_targets(declared, overrides)
    # Everywhere-overrides first, so that a chapter's own (02_unet:depth) wins over depth.
    for spelled in sorted(overrides, key=lambda spelled: ":" in spelled):
        for chapter in targets[spelled]:
            chosen[chapter][spelled.split(":")[-1]] = overrides[spelled]
            if spelled != "data":
                asked[chapter][spelled.split(":")[-1]] = overrides[spelled]
    for chapter, names in declared.items():
        if PROFILE_PARAMETER in names:
            chosen[chapter][PROFILE_PARAMETER] = profile
            chosen[chapter][BUILD_OVERRIDES] = asked[chapter]
    return chosen


def override_targets(declared: dict[str, set[str]], overrides: dict) -> dict[str, list[str]]:
    """The chapters each ``-p`` override sets: ``NAME`` every chapter that declares it,
    ``CHAPTER:NAME`` that chapter alone. Unknown chapters and names raise :class:`.ConfigError`
    listing the valid ones.

    Examples
    --------
    >>> declared = {"02_unet": {"depth", "steps"}, "03_vaegan": {"depth"}}
    >>> override_targets(declared, {"depth": 2, "02_unet:steps": 50})
    {'depth': ['02_unet', '03_vaegan'], '02_unet:steps': ['02_unet']}
    """
    settable = {chapter: set(names) - {PROFILE_PARAMETER} for chapter, names in declared.items()}
    every_name = set().union(*settable.values()) if settable else set()
    targets = {}
    for spelled in overrides:
        chapter, _, name = spelled.rpartition(":")
        if name == PROFILE_PARAMETER:
            raise ConfigError(f"{PROFILE_PARAMETER!r} is not a -p parameter: pick the profile with --profile NAME")
        if chapter and chapter not in settable:
            raise ConfigError(f"unknown chapter {chapter!r} in -p {spelled}: the chapters are {', '.join(settable)}")
        if chapter and name not in settable[chapter]:
            raise ConfigError(f"{chapter} has no parameter {name!r}: its parameters are "
                              f"{', '.join(sorted(settable[chapter]))}")
        if not chapter and name not in every_name:
            raise ConfigError(f"unknown parameter {name!r}: the chapters' parameters are {', '.join(sorted(every_name))}")
        targets[spelled] = [chapter] if chapter else [c for c, names in settable.items() if name in names]
    return targets


def select_profile(chapter: str, profile: str, namespace: dict, profiles: dict | None = None) -> str:
    """Apply a profile to a chapter's parameters, as its set-up cell does.

    A chapter opened by hand (on Colab, say) has only its ``parameters`` cell,
    which holds the quick values; this gives it a GPU's scale when it has one.
    ``inpaint book`` passes the profile's name and ``profile_overrides`` with
    the values it resolved, which this keeps, so the book is built with the
    profile asked for, on any device. Prints one line saying what it did.

    Parameters
    ----------
    chapter : str
        The chapter's name in the profiles file, such as ``"02_unet"``.
    profile : str
        ``"auto"``: the full profile when TensorFlow sees a GPU or a TPU, the
        cell's values otherwise; on a GPU it upgrades only the parameters the
        reader left at the chapter's own values (the ``quick`` profile spells
        them out) and lists those it kept. ``"cell"``: the cell's values as
        written. Or the name of a profile (smoke, quick, full), which replaces
        the cell's values of the names it sets, edited or not.
    namespace : dict
        The chapter's variables, ``globals()``; updated in place.
    profiles : dict, optional
        From :func:`.load_profiles`; by default the package's.

    Returns
    -------
    str
        The scale the chapter runs at, for its scale line: the profile's name,
        with the values that differ from it (``"quick"`` for the cell as
        written, ``"quick with steps = 50"`` where a reader changed one,
        ``"smoke with depth = 2"`` for ``inpaint book -p depth 2``).

    Examples
    --------
    >>> values = {"steps": 900, "batch_size": 32}
    >>> select_profile("02_unet", "smoke", values, {"smoke": {"02_unet": {"steps": 20}}})
    Profile: smoke: steps = 20
    'smoke'
    >>> values["steps"]
    20
    >>> select_profile("02_unet", "cell", values, {"quick": {"02_unet": {"steps": 300}}})
    Profile: the parameters as set above (profile = "cell")
    'quick with steps = 20'
    """
    profiles = load_profiles() if profiles is None else profiles
    if BUILD_OVERRIDES in namespace:  # inpaint book resolved every value: keep them
        label = _with_values(profile, namespace[BUILD_OVERRIDES])
        print(f"Profile: {label}, as inpaint book set it")
        return label
    if profile not in (AUTO, CELL, *profiles):
        raise ConfigError(f"unknown profile {profile!r}: use one of {', '.join((AUTO, CELL, *profiles))}")
    # What the reader changed of the chapter's own values (the quick profile spells them out).
    edited = changed_values((profiles.get(OWN_VALUES_PROFILE) or {}).get(chapter) or {}, namespace)
    own_label = _with_values(OWN_VALUES_PROFILE, edited)
    if profile == CELL:
        print('Profile: the parameters as set above (profile = "cell")')
        return own_label
    reason = ""
    if profile == AUTO:
        from inpaintlib.device import has_accelerator

        if not has_accelerator():
            print("Profile: this cell's values (quick, no GPU found)")
            return own_label
        profile, reason = ACCELERATOR_PROFILE, f' (a GPU or TPU was found; set profile = "{CELL}" to keep this cell\'s values)'
    values = wanted = (profiles[profile] or {}).get(chapter) or {}
    kept = {}
    if reason:  # auto: a value the reader edited is theirs; only the chapter's own values are upgraded
        kept = {name: edited[name] for name in values if name in edited}
        values = {name: value for name, value in values.items() if name not in kept}
    unknown = set(values) - set(namespace)
    if unknown:  # a name the chapter lacks would be set and never read
        raise ConfigError(f"profile {profile!r} sets {', '.join(sorted(unknown))}, which {chapter} does not have")
    namespace.update(values)
    changes = ", ".join(f"{name} = {value!r}" for name, value in values.items())
    print(f"Profile: {profile}{reason}: {changes}" if changes else f"Profile: {profile}{reason}, the same values as this cell")
    if kept:
        print("  kept as you set them: " + ", ".join(
            f"{name} = {value!r} ({profile} would set {wanted[name]!r})"
            for name, value in kept.items()))
    return _with_values(profile, kept)


def changed_values(values: dict, namespace: dict) -> dict:
    """The names of ``values`` whose value in ``namespace`` differs, with that value.

    Examples
    --------
    >>> changed_values({"steps": 300, "batch_size": 32}, {"steps": 50, "batch_size": 32})
    {'steps': 50}
    """
    return {name: namespace[name] for name in values if name in namespace and namespace[name] != values[name]}


def _with_values(profile: str, values: dict) -> str:
    """A profile's name with the values that differ from it: ``"smoke with depth = 2"``."""
    return profile + (" with " + ", ".join(f"{name} = {value!r}" for name, value in values.items()) if values else "")


def recipe_config(config, profile: str = ACCELERATOR_PROFILE, profiles: dict | None = None):
    """A :class:`.TrainConfig` at a profile's scale: the training fields and model options that the
    profile sets in the model's own chapter (``RECIPE_CHAPTERS``: 02_unet for a U-Net), with
    everything else (holes, losses, data) as ``config`` has it. The model that chapter would have
    trained at that profile, which :func:`.full_recipe_of` looks for in the cache.
    """
    profiles = load_profiles() if profiles is None else profiles
    values = (profiles[profile] or {}).get(RECIPE_CHAPTERS[config.model]) or {}
    # checkpoint_every shapes no model; n_eval and face_images are the chapter's, not the model's.
    fields = {field.name for field in dataclasses.fields(config)} - {"checkpoint_every"}
    options = set(config.all_model_options())
    return dataclasses.replace(
        config, **{name: value for name, value in values.items() if name in fields},
        model_options={**config.model_options, **{name: value for name, value in values.items() if name in options}})
