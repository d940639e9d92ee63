"""What made a result: digests of the code and the libraries, for the caches' keys, and the
scale line and note that every chapter's results carry.

Three caches reuse work only while the code that made it is unchanged: the
decoded images (keyed by the decoding code), the trained models and the
executed chapters (both keyed by :func:`.code_digest`, the whole package and
the TensorFlow and Keras it ran on). A classroom exercise that edits any of
it, a mask function say, retrains what the edit could change.

Nothing here imports TensorFlow: the versions are read from the installed
packages' metadata.

A chapter's results say what made them: :func:`.scale_line` under its tables,
figures and verdicts (the profile, each model's steps and batch, training
time, device, and whether it was trained here, loaded from the cache or
imported from a bundle), and :func:`.scale_note` at its top, which says how
far a smoke or quick run is from the full recipe.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def source_digest(paths) -> str:
    """A short hash of files' names (relative to the package) and bytes.

    Examples
    --------
    >>> len(source_digest([PACKAGE / "provenance.py"]))
    16
    """
    digest = hashlib.sha256()
    for path in sorted(Path(p).resolve() for p in paths):
        name = path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path.name
        digest.update(f"{name}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def package_sources() -> list[Path]:
    """Every Python source of the package, its subpackages included, in a fixed order."""
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


@functools.cache
def module_version(module: str) -> str:
    """The installed version of the distribution that provides an importable module.

    ``module_version("tensorflow")`` finds ``tensorflow``, ``tensorflow-cpu``,
    ``tf-nightly`` or whichever distribution installed the ``tensorflow``
    package; "not installed" where none did.

    Examples
    --------
    >>> module_version("numpy") == metadata.version("numpy")
    True
    """
    names = metadata.packages_distributions().get(module, [])
    for name in [module, *names]:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def library_versions() -> str:
    """The TensorFlow and Keras that compute here, e.g. ``"tensorflow 2.21.0, keras 3.15.1"``."""
    return ", ".join(f"{module} {module_version(module)}" for module in ("tensorflow", "keras"))


def code_digest() -> str:
    """A short hash of everything in the package's code and libraries that can shape a result:
    every source file (walked recursively) and the TensorFlow and Keras versions."""
    digest = hashlib.sha256(source_digest(package_sources()).encode())
    digest.update(library_versions().encode())
    return digest.hexdigest()[:16]


def scale_line(profile: str, models) -> str:
    """The line a chapter's results carry: the profile as :func:`.select_profile` resolved it,
    then each model's :meth:`.TrainedModel.scale`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> scale_line("quick", [SimpleNamespace(scale=lambda: "U-Net: 300 steps of 32, 2.1 min, from the cache")])
    'Scale: quick profile; U-Net: 300 steps of 32, 2.1 min, from the cache.'
    """
    return f"Scale: {profile} profile; " + "; ".join(model.scale() for model in models) + "."


def scale_note(profile: str, models, full_models=()) -> str:
    """The admonition at the top of a chapter (MyST, for ``glue:md``) on the scale of its results.

    Parameters
    ----------
    profile : str
        As :func:`.select_profile` resolved it (``"quick"``, ``"smoke with depth = 2"``).
    models : list of TrainedModel
        The models the chapter's results come from.
    full_models : list
        For each model, its full recipe's model where the cache holds it
        (:func:`.full_recipe_of`), else None.

    Returns
    -------
    str
        Below the full profile, how many minutes of training on which device made the results,
        what the full recipe trains instead, and how to get it; a note of the training otherwise.
    """
    from inpaintlib.profiles import ACCELERATOR_PROFILE, recipe_config

    minutes = sum(model.training_seconds for model in models) / 60
    devices = sorted({model.device for model in models} - {""})
    spent = (f"{minutes:.0f} minutes" if minutes >= 1.5 else "one minute" if minutes >= 0.5 else
             "less than a minute") + f" of training on {' and '.join(devices) or 'this machine'}"
    text = [f"The **{profile}** profile. " + "; ".join(model.scale() for model in models) + "."]
    if profile.split()[0] == ACCELERATOR_PROFILE:
        title, kind = f"The full recipe: {spent}", "note"
    else:
        title, kind = f"These results come from {spent}", "attention"
        recipes = []
        for model in models:
            recipe = recipe_config(model.config, ACCELERATOR_PROFILE)
            own = model.config.all_model_options()
            changed = {name: value for name, value in recipe.model_options.items() if own.get(name) != value}
            if recipe.limit != model.config.limit:
                changed["limit"] = recipe.limit
            recipes.append(f"{model.name} {recipe.steps} steps of {recipe.batch_size}"
                           + "".join(f", {name} = {value!r}" for name, value in changed.items()))
        text.append("The full recipe trains " + "; ".join(dict.fromkeys(recipes)) + ", on a GPU: set "
                    "`profile = \"full\"` (or build with `inpaint book --profile full`), or import a bundle of "
                    "its models with `inpaint models import` to skip the training.")
        found = [model for model in full_models if model is not None]
        if found:
            text.append("The model cache holds the full recipe's " + "; ".join(model.scale() for model in found)
                        + ". The rows named *full recipe* below score it on the same faces.")
    return f":::{{admonition}} {title}\n:class: {kind}\n" + "\n\n".join(text) + "\n:::\n"
