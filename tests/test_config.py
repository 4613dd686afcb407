"""Configuration: defaults, TOML round trip, INI mapping, environment and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightpipe.cli.app import main
from nightpipe.config import Settings, default_toml, load_settings, settings_to_toml
from nightpipe.errors import ConfigError


def test_defaults_are_valid_and_frozen() -> None:
    settings = load_settings(None, environ={})
    assert settings.camera.gain is None  # unset: the header's e-/ADU, else 1.0 (frames/detector.py)
    with pytest.raises(Exception, match="frozen"):
        settings.camera.gain = 2.0  # type: ignore[misc]


def test_default_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "nightpipe.toml"
    path.write_text(default_toml())
    loaded = load_settings(path, environ={})
    assert loaded == Settings()
    shown = tmp_path / "shown.toml"
    shown.write_text(settings_to_toml(loaded))
    assert load_settings(shown, environ={}) == loaded


def test_cli_init_show_load_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "night.toml"
    assert main(["config", "init", str(cfg)]) == 0
    assert "# Gain, electrons per ADU" in cfg.read_text()
    capsys.readouterr()
    assert main(["-c", str(cfg), "-s", "camera.gain=1.7", "config", "show"]) == 0
    shown = tmp_path / "shown.toml"
    shown.write_text(capsys.readouterr().out)
    assert load_settings(shown, environ={}).camera.gain == 1.7
    assert main(["config", "init", str(cfg)]) == 2  # exists: refuses without --force


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[photometry]\naperturez = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'photometry.aperturez'") as info:
        load_settings(path, environ={})
    assert str(path) in str(info.value)


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[photometri]\ndetect_sigma = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'photometri'"):
        load_settings(path, environ={})


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[camera]\ngain = "lots"\n')
    with pytest.raises(ConfigError, match=r"bad value for 'camera.gain' \('lots'\)"):
        load_settings(path, environ={})


def test_out_of_range_value() -> None:
    with pytest.raises(ConfigError, match="observatory.latitude"):
        load_settings(None, overrides=["observatory.latitude=123"], environ={})


def test_bad_toml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[camera\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, environ={})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent/nightpipe.toml", environ={})


def test_precedence_file_env_flag(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text("[camera]\ngain = 1.1\nread_noise = 7\n")
    env = {"NIGHTPIPE_CAMERA__GAIN": "1.2", "NIGHTPIPE_DATABASE__URL": "sqlite:///x.db"}
    s = load_settings(path, environ=env)
    assert (s.camera.gain, s.camera.read_noise, s.database.url) == (1.2, 7.0, "sqlite:///x.db")
    s = load_settings(path, environ=env, overrides=["camera.gain=1.3"])
    assert s.camera.gain == 1.3


def test_override_must_be_dotted() -> None:
    with pytest.raises(ConfigError, match="section.key=value"):
        load_settings(None, overrides=["gain"], environ={})


def test_ini_file_maps_onto_settings(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.ini"
    path.write_text(
        "[GENERAL]\ngain = 1.4\nreadnoise = 9\noutput_dir = out\n"
        "[MASTERS]\nmethod = mean\nsigma_clip_low = 4\nsigma_clip_high = 5\n"
        "[CALIBRATION]\nscale_dark = no\noverscan = none\n"
    )
    s = load_settings(path, environ={})
    assert s.camera.gain == 1.4 and s.camera.read_noise == 9
    assert s.calibration.combine_method == "mean"
    assert (s.calibration.sigma_low, s.calibration.sigma_high) == (4, 5)
    assert s.calibration.dark_scaling is False and s.calibration.overscan == "none"
    assert s.paths.output == Path("out")


def test_ini_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.ini"
    path.write_text("[MASTERS]\nfrobnicate = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'frobnicate' in \\[MASTERS\\]"):
        load_settings(path, environ={})


def test_targets_and_overrides_tables(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text(
        '[[timeseries.targets]]\nname = "HAT-P-32"\nra = 31.0429\ndec = 46.6878\n'
        '[[camera.overrides]]\nmatch = { INSTRUME = "X" }\nset = { FILTER = "Clear" }\n'
    )
    s = load_settings(path, environ={})
    assert s.timeseries.targets[0].name == "HAT-P-32"
    assert s.camera.overrides[0].set["FILTER"] == "Clear"
    assert load_settings(None, environ={}).digest() != s.digest()
