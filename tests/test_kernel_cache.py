"""Compiled numba kernels are cached in one writable user folder (issue 22: the first night on a fresh
install), and ``nightpipe doctor`` names that folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nightpipe.kernel_cache import default_cache_dir, use_user_cache

SCRIPT = """
import os, sys
from nightpipe.kernel_cache import use_user_cache
folder = use_user_cache()
import numpy as np
from nightpipe.photometry.clipped_stats import _mean_std
_mean_std(np.arange(5.0), 5)
from nightpipe.doctor import check_numba
check = check_numba()
print(folder, check.ok, check.found, sep="|")
"""


def test_the_command_line_caches_kernels_in_the_user_cache(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    folder, ok, found = proc.stdout.strip().rsplit("\n", 1)[-1].split("|")
    assert Path(folder) == tmp_path / "nightpipe" / "numba" == default_cache_dir(env)
    assert list(Path(folder).rglob("*_mean_std*.nbi")), "the kernel was not cached in the user folder"
    assert ok == "True" and found.startswith(folder) and "0 kernels" not in found


def test_a_folder_the_user_chose_is_kept(tmp_path: Path) -> None:
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "mine"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert use_user_cache(env) == tmp_path / "mine" and env["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")
