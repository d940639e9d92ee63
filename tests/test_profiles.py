"""Profiles: every chapter parameter a profile sets exists, mistakes name the valid names, and a
chapter run by hand picks its profile (full on a GPU) while a book build keeps the one it was given."""

from __future__ import annotations

import inspect
import json

import pytest
from conftest import REPO

from inpaintlib.book import declared_parameters, list_chapters
from inpaintlib.config import TrainConfig
from inpaintlib.errors import ConfigError
from inpaintlib.profiles import chapter_parameters, load_profiles, override_targets, parse_value, select_profile
from inpaintlib.unet import build_unet
from inpaintlib.vaegan import build_vaegan

DECLARED = {"01_a": {"data", "n", "seed"}, "02_b": {"data", "steps"}}
PROFILES = {"smoke": {"01_a": {"n": 2}, "02_b": {"steps": 1}}, "quick": {}}


def test_profile_values_and_overrides_reach_the_chapters_that_declare_them():
    chosen = chapter_parameters(PROFILES, "smoke", DECLARED, data="synthetic", overrides={"seed": 3})
    assert chosen == {"01_a": {"n": 2, "data": "synthetic", "seed": 3}, "02_b": {"steps": 1, "data": "synthetic"}}
    assert chapter_parameters(PROFILES, "quick", DECLARED) == {"01_a": {}, "02_b": {}}


def test_the_build_tells_each_chapter_to_keep_the_values_it_injects():
    declared = {name: names | {"profile"} for name, names in DECLARED.items()}
    chosen = chapter_parameters(PROFILES, "smoke", declared, overrides={"seed": 3})
    assert chosen == {"01_a": {"n": 2, "seed": 3, "profile": "smoke", "profile_overrides": {"seed": 3}},
                      "02_b": {"steps": 1, "profile": "smoke", "profile_overrides": {}}}
    with pytest.raises(ConfigError, match="'profile' is not a -p parameter: pick the profile with --profile NAME"):
        chapter_parameters(PROFILES, "smoke", declared, overrides={"profile": "full"})
    with pytest.raises(ConfigError, match="unknown parameter.*profile of 01_a"):  # nor set by a profile
        chapter_parameters({"smoke": {"01_a": {"profile": "full"}}}, "smoke", declared)
    with pytest.raises(ConfigError, match="are data, n, seed, steps$"):  # and not offered as settable
        chapter_parameters(PROFILES, "smoke", declared, overrides={"stesp": 1})


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


def test_a_chapter_scoped_parameter_sets_that_chapter_alone_and_wins_over_the_everywhere_one():
    declared = {"01_a": {"n", "seed"}, "02_b": {"n", "steps"}}
    chosen = chapter_parameters(PROFILES, "smoke", declared, overrides={"02_b:n": 5, "n": 3})
    assert chosen == {"01_a": {"n": 3}, "02_b": {"steps": 1, "n": 5}}
    assert override_targets(declared, {"n": 3, "02_b:n": 5}) == {"n": ["01_a", "02_b"], "02_b:n": ["02_b"]}
    with pytest.raises(ConfigError, match="unknown chapter '03_c' in -p 03_c:n: the chapters are 01_a, 02_b"):
        chapter_parameters(PROFILES, "smoke", declared, overrides={"03_c:n": 1})
    with pytest.raises(ConfigError, match="01_a has no parameter 'steps': its parameters are n, seed"):
        chapter_parameters(PROFILES, "smoke", declared, overrides={"01_a:steps": 1})


def test_the_readmes_examples_set_what_they_say_and_nothing_else():
    """-p NAME VALUE sets every chapter that has NAME; -p CHAPTER:NAME VALUE that chapter alone."""
    declared = {name: declared_parameters(REPO / "book" / f"{name}.ipynb") for name in CHAPTERS}
    readme = (REPO / "README.md").read_text()
    assert "-p mask_channel false -p depth 2" in readme and "-p 02_unet:depth 2" in readme
    quick = chapter_parameters(load_profiles(), "quick", declared)  # the cells' own values
    everywhere = chapter_parameters(load_profiles(), "quick", declared,
                                    overrides={"mask_channel": False, "depth": 2})
    scoped = chapter_parameters(load_profiles(), "quick", declared,
                                overrides={"mask_channel": False, "02_unet:depth": 2})
    changed = lambda chosen: {(chapter, name) for chapter in chosen for name in chosen[chapter]  # noqa: E731
                              if chosen[chapter][name] != quick[chapter].get(name, "unset")
                              and name != "profile_overrides"}
    assert changed(everywhere) == {("02_unet", "mask_channel"), ("02_unet", "depth"), ("03_vaegan", "depth")}
    assert changed(scoped) == {("02_unet", "mask_channel"), ("02_unet", "depth")}
    # and each chapter's scale line names what was changed in it
    assert [scoped[chapter]["profile_overrides"] for chapter in CHAPTERS] == [
        {}, {"mask_channel": False, "depth": 2}, {}, {}]


def test_values_from_the_command_line_are_typed():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("celeba:/data") == "celeba:/data"


def test_the_books_profiles_fit_its_chapters():
    chapters = list_chapters(REPO)
    assert [c.stem for c in chapters] == ["01_background", "02_unet", "03_vaegan", "04_comparison"]
    declared = {c.stem: declared_parameters(c) for c in chapters}
    profiles = load_profiles()
    assert set(profiles) == {"smoke", "quick", "published", "full"}
    for profile in profiles:
        chapter_parameters(profiles, profile, declared)  # raises on any unknown name
    assert all({"data", "profile"} <= names for names in declared.values())


def chapter_defaults(name: str) -> dict:
    """The values a chapter's parameters cell sets."""
    notebook = json.loads((REPO / "book" / f"{name}.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    values = {}
    exec("".join(cell["source"]), {}, values)
    return values


UNET = ("steps", "batch_size", "base_filters", "depth", "limit")
VAEGAN = ("steps", "batch_size", "latent_dim", "base_filters", "limit")
SHARED_MODELS = [  # (chapter that reuses a model, prefix of its parameters, chapter that trains it,
    # {the reusing chapter's name: the training chapter's name})
    ("03_vaegan", "unet_", "02_unet", {**{f"unet_{n}": n for n in UNET}, "unet_mask": "mask"}),
    ("04_comparison", "unet_", "02_unet", {**{f"unet_{n}": n for n in UNET}, "mask": "mask"}),
    ("04_comparison", "vaegan_", "03_vaegan", {**{f"vaegan_{n}": n for n in VAEGAN}, "vaegan_mask": "mask"}),
]


@pytest.mark.parametrize("profile", ["smoke", "quick", "published", "full"])
@pytest.mark.parametrize("user, prefix, trainer, names", SHARED_MODELS)
def test_chapters_reuse_the_models_earlier_chapters_trained(profile, user, prefix, trainer, names):
    """A later chapter loads an earlier chapter's model from the cache only if its parameters match."""
    profiles = load_profiles()
    trained = {**chapter_defaults(trainer), **profiles[profile].get(trainer, {})}
    reused = {**chapter_defaults(user), **profiles[profile].get(user, {})}
    for name, trainer_name in names.items():
        assert reused[name] == trained[trainer_name], name
    for name in ("image_size", "hole", "seed"):
        assert reused[name] == trained[name], name
    # What the later chapter does not set must be at the library's defaults in the earlier one:
    # the model options and the training fields.
    builder = {"unet_": build_unet, "vaegan_": build_vaegan}[prefix]
    model = {"unet_": "unet", "vaegan_": "vaegan"}[prefix]
    defaults = {**{name: p.default for name, p in inspect.signature(builder).parameters.items()},
                **{name: getattr(TrainConfig(model=model), name) for name in ("loss", "schedule", "learning_rate")}}
    for name, default in defaults.items():
        if name in trained and name not in names.values() and name != "image_size":
            assert trained[name] == default, name


@pytest.mark.parametrize("chapter", ["01_background", "02_unet", "03_vaegan", "04_comparison"])
def test_papermill_reads_every_parameter_a_chapter_assigns(chapter):
    """A line papermill cannot parse (an '=' in a comment, say) is silently not a parameter."""
    assert declared_parameters(REPO / "book" / f"{chapter}.ipynb") == set(chapter_defaults(chapter))


# --- a chapter run by hand: select_profile in its set-up cell ---------------------------------

CHAPTERS = ["01_background", "02_unet", "03_vaegan", "04_comparison"]


@pytest.fixture
def accelerator(monkeypatch):
    """Set whether the chapter "finds" a GPU, without asking TensorFlow."""
    def pretend(found: bool):
        monkeypatch.setattr("inpaintlib.device.has_accelerator", lambda: found)
    return pretend


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_auto_keeps_the_cells_values_on_a_cpu(chapter, accelerator, capsys):
    accelerator(False)
    values = chapter_defaults(chapter)
    assert select_profile(chapter, "auto", values) == "quick"
    assert values == chapter_defaults(chapter)
    assert capsys.readouterr().out == "Profile: this cell's values (quick, no GPU found)\n"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_auto_applies_the_full_profile_on_a_gpu(chapter, accelerator, capsys):
    accelerator(True)
    values = chapter_defaults(chapter)
    assert select_profile(chapter, "auto", values) == "full"
    full = load_profiles()["full"][chapter]
    assert full and values == {**chapter_defaults(chapter), **full}
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith('Profile: full (a GPU or TPU was found; set profile = "cell" to keep this cell\'s values): ')
    assert all(f"{name} = {value!r}" in line for name, value in full.items())


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_quick_profile_spells_out_the_cells_own_values_of_what_full_sets(chapter):
    profiles = load_profiles()
    quick, full = profiles["quick"].get(chapter) or {}, profiles["full"].get(chapter) or {}
    assert set(full) <= set(quick), "auto could not tell an edited value from the chapter's own"
    defaults = chapter_defaults(chapter)
    assert {name: defaults[name] for name in quick} == quick


def test_auto_on_a_gpu_upgrades_only_what_the_reader_left_and_lists_what_it_kept(accelerator, capsys):
    accelerator(True)
    values = {**chapter_defaults("02_unet"), "steps": 500, "n_eval": 50}
    full = load_profiles()["full"]["02_unet"]
    assert select_profile("02_unet", "auto", values) == "full with steps = 500, n_eval = 50"
    assert values["steps"] == 500 and values["n_eval"] == 50, "the reader's edits stay"
    assert values["batch_size"] == full["batch_size"] and values["base_filters"] == full["base_filters"]
    first, kept = capsys.readouterr().out.splitlines()
    assert "steps" not in first.split(": ", 1)[1] and f"batch_size = {full['batch_size']}" in first
    assert kept == f"  kept as you set them: steps = 500 (full would set {full['steps']}), n_eval = 50 (full would set {full['n_eval']})"


@pytest.mark.parametrize("profile", ["smoke", "quick", "published", "full"])
def test_a_named_profile_applies_its_values_on_any_device(profile, accelerator, capsys):
    accelerator(profile != "full")  # full on a CPU, smoke and quick on a GPU: as asked
    values = chapter_defaults("03_vaegan")
    assert select_profile("03_vaegan", profile, values) == profile
    assert values == {**chapter_defaults("03_vaegan"), **load_profiles()[profile]["03_vaegan"]}
    assert capsys.readouterr().out.startswith(f"Profile: {profile}")


def test_the_scale_names_the_values_a_reader_changed(accelerator):
    accelerator(False)
    values = {**chapter_defaults("02_unet"), "steps": 50, "depth": 2}
    assert select_profile("02_unet", "cell", values) == "quick with steps = 50"  # depth is no profile's
    assert select_profile("02_unet", "auto", values) == "quick with steps = 50"


def test_cell_changes_nothing_even_on_a_gpu(accelerator, capsys):
    accelerator(True)
    values = chapter_defaults("02_unet")
    assert select_profile("02_unet", "cell", values) == "quick"
    assert values == chapter_defaults("02_unet")
    assert capsys.readouterr().out == 'Profile: the parameters as set above (profile = "cell")\n'


def test_unknown_profile_or_name_in_select_profile_is_an_error():
    with pytest.raises(ConfigError, match="unknown profile .huge.: use one of auto, cell, smoke, quick, published, full"):
        select_profile("02_unet", "huge", chapter_defaults("02_unet"))
    with pytest.raises(ConfigError, match="profile 'smoke' sets stesp, which 02_unet does not have"):
        select_profile("02_unet", "smoke", {"steps": 1}, {"smoke": {"02_unet": {"stesp": 2}}})


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_book_build_runs_the_profile_it_was_given_on_a_gpu_too(chapter, accelerator, capsys):
    """papermill puts the injected values after the parameters cell; the set-up cell must keep them."""
    accelerator(True)
    declared = {name: declared_parameters(REPO / "book" / f"{name}.ipynb") for name in CHAPTERS}
    first = sorted(declared[chapter] - {"profile", "data"})[0]
    injected = chapter_parameters(load_profiles(), "smoke", declared, overrides={first: 7})[chapter]
    assert injected["profile"] == "smoke" and injected[first] == 7 and injected["profile_overrides"] == {first: 7}
    values = {**chapter_defaults(chapter), **injected}
    assert select_profile(chapter, values["profile"], values) == f"smoke with {first} = 7"
    assert values == {**chapter_defaults(chapter), **injected}
    assert capsys.readouterr().out == f"Profile: smoke with {first} = 7, as inpaint book set it\n"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_selects_its_profile_right_after_its_parameters(chapter):
    cells = json.loads((REPO / "book" / f"{chapter}.ipynb").read_text())["cells"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    assert f'select_profile("{chapter}", profile, globals())' in "".join(cells[index + 1]["source"])
    assert chapter_defaults(chapter)["profile"] == "auto"
