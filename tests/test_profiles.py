"""Profiles: every chapter parameter a profile sets exists, and mistakes name the valid names."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from inpaintlib.book import declared_parameters, list_chapters
from inpaintlib.errors import ConfigError
from inpaintlib.profiles import chapter_parameters, load_profiles, parse_value

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
    assert [c.stem for c in chapters] == ["01_background", "02_unet", "03_vaegan"]
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


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_the_vaegan_chapter_compares_with_chapter_2s_unet_in_every_profile(profile):
    """Chapter 3 loads chapter 2's U-Net from the cache: its unet_* parameters must match chapter 2's."""
    profiles = load_profiles(REPO / "book" / "profiles.yml")
    unet = {**chapter_defaults("02_unet"), **profiles[profile].get("02_unet", {})}
    vaegan = {**chapter_defaults("03_vaegan"), **profiles[profile].get("03_vaegan", {})}
    for name in ("steps", "batch_size", "base_filters", "depth", "limit"):
        assert vaegan[f"unet_{name}"] == unet[name], name
    for name in ("image_size", "mask", "hole", "seed", "mask_channel"):
        assert vaegan.get(name, True) == unet[name], name


@pytest.mark.parametrize("chapter", ["01_background", "02_unet", "03_vaegan"])
def test_papermill_reads_every_parameter_a_chapter_assigns(chapter):
    """A line papermill cannot parse (an '=' in a comment, say) is silently not a parameter."""
    assert declared_parameters(REPO / "book" / f"{chapter}.ipynb") == set(chapter_defaults(chapter))
