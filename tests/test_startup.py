"""TensorFlow's start-up lines stay out of what a user sees, unless the user asks for them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from inpaintlib.startup import is_tensorflow_log_line

#: Imports TensorFlow the way a chapter does (through Keras, after inpaintlib), computes, and
#: writes one line of its own on stderr.
USER_CODE = """
import sys
import inpaintlib
import keras
import tensorflow as tf
tf.config.list_physical_devices("GPU")
float(tf.reduce_sum(tf.ones(3)))
print("the user's own line", file=sys.stderr)
"""


def run(env_update):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_CPP", "INPAINTLIB_TF"))}
    return subprocess.run([sys.executable, "-c", USER_CODE], capture_output=True, text=True,
                          env={**env, **env_update}, timeout=120)


def test_importing_tensorflow_after_inpaintlib_prints_nothing_but_the_users_own_lines():
    result = run({})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["the user's own line"]


@pytest.mark.parametrize("level", ["0", "1"])
def test_a_level_the_user_sets_shows_tensorflows_lines(level):
    """The hook is what hides them: where the user sets TF_CPP_MIN_LOG_LEVEL, TensorFlow speaks."""
    result = run({"TF_CPP_MIN_LOG_LEVEL": level})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == "the user's own line"
    assert any(is_tensorflow_log_line(line) for line in lines), result.stderr


def test_a_child_process_inherits_the_librarys_level_and_stays_quiet():
    """A chapter's kernel inherits TF_CPP_MIN_LOG_LEVEL from `inpaint book`: that is not the user's."""
    parent = "import inpaintlib, os, subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1]], check=True)"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_CPP", "INPAINTLIB_TF"))}
    result = subprocess.run([sys.executable, "-c", parent, USER_CODE], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["the user's own line"]
