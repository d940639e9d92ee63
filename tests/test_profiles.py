"""Profiles: every chapter parameter a profile sets exists, and mistakes name the valid names."""

from __future__ import annotations

import inspect
import json

import pytest
from conftest import REPO

from inpaintlib.book import declared_parameters, list_chapters
from inpaintlib.errors import ConfigError
from inpaintlib.profiles import chapter_parameters, load_profiles, parse_value
from inpaintlib.unet import build_unet
from inpaintlib.vaegan import build_vaegan

DECLARED = {"01_a": {"data", "n", "seed"}, "02_b": {"data", "steps"}}
PROFILES = {"smoke": {"01_a": {"n": 2}, "02_b": {"steps": 1}}, "quick": {}}


def test_profile_values_and_overrides_reach_the_chapters_that_declare_them():
    chosen = chapter_parameters(PROFILES, "smoke", DECLARED, data="synthetic", overrides={"seed": 3})
    assert chosen == {"01_a": {"n": 2, "data": "synthetic", "seed": 3}, "02_b": {"steps": 1, "data": "synthetic"}}
    assert chapter_parameters(PROFILES, "quick", DECLARED) == {"01_a": {}, "02_b": {}}


def test_unknown_names_are_errors_that_list_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown profile 'huge': use one of smoke, quick"):
        chapter_parameters(PROFILES, "huge", DECLARED)
    with pytest.raises(ConfigError, match="unknown parameter 'stesp': the chapters' parameters are data, n, seed, steps"):
        chapter_parameters(PROFILES, "smoke", DECLARED, overrides={"stesp": 1})
    bad = {"smoke": {"01_a": {"m": 1}}}
    with pytest.raises(ConfigError, match="unknown parameter.*m of 01_a: its parameters are data, n, seed"):
        chapter_parameters(bad, "smoke", DECLARED)
    with pytest.raises(ConfigError, match="unknown chapter '09_z'"):
        chapter_parameters({"smoke": {"09_z": {}}}, "smoke", DECLARED)


def test_values_from_the_command_line_are_typed():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("celeba:/data") == "celeba:/data"


def test_the_books_profiles_fit_its_chapters():
    chapters = list_chapters(REPO)
    assert [c.stem for c in chapters] == ["01_background", "02_unet", "03_vaegan", "04_comparison"]
    declared = {c.stem: declared_parameters(c) for c in chapters}
    profiles = load_profiles(REPO / "book" / "profiles.yml")
    assert set(profiles) == {"smoke", "quick", "full"}
    for profile in profiles:
        chapter_parameters(profiles, profile, declared)  # raises on any unknown name
    assert all("data" in names for names in declared.values())


def chapter_defaults(name: str) -> dict:
    """The values a chapter's parameters cell sets."""
    notebook = json.loads((REPO / "book" / f"{name}.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    values = {}
    exec("".join(cell["source"]), {}, values)
    return values


SHARED_MODELS = [  # (chapter that reuses a model, prefix of its parameters, chapter that trains it, their names)
    ("03_vaegan", "unet_", "02_unet", ("steps", "batch_size", "base_filters", "depth", "limit")),
    ("04_comparison", "unet_", "02_unet", ("steps", "batch_size", "base_filters", "depth", "limit")),
    ("04_comparison", "vaegan_", "03_vaegan", ("steps", "batch_size", "latent_dim", "base_filters", "limit")),
]


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
@pytest.mark.parametrize("user, prefix, trainer, names", SHARED_MODELS)
def test_chapters_reuse_the_models_earlier_chapters_trained(profile, user, prefix, trainer, names):
    """A later chapter loads an earlier chapter's model from the cache only if its parameters match."""
    profiles = load_profiles(REPO / "book" / "profiles.yml")
    trained = {**chapter_defaults(trainer), **profiles[profile].get(trainer, {})}
    reused = {**chapter_defaults(user), **profiles[profile].get(user, {})}
    for name in names:
        assert reused[f"{prefix}{name}"] == trained[name], name
    for name in ("image_size", "mask", "hole", "seed"):
        assert reused[name] == trained[name], name
    # The model options the later chapter does not set must be at the library's defaults in the earlier one.
    builder = {"unet_": build_unet, "vaegan_": build_vaegan}[prefix]
    for name, parameter in inspect.signature(builder).parameters.items():
        if name in trained and name not in names and name != "image_size":
            assert trained[name] == parameter.default, name


@pytest.mark.parametrize("chapter", ["01_background", "02_unet", "03_vaegan", "04_comparison"])
def test_papermill_reads_every_parameter_a_chapter_assigns(chapter):
    """A line papermill cannot parse (an '=' in a comment, say) is silently not a parameter."""
    assert declared_parameters(REPO / "book" / f"{chapter}.ipynb") == set(chapter_defaults(chapter))
