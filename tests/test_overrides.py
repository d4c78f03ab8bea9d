"""``--set KEY=VALUE``: typed from the dataclass annotations, for every field of every recipe."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import pytest

import kerassev.recipes
from kerassev.recipes.overrides import (
    _union_members,
    apply_overrides,
    field_types,
    parse_value,
    to_text,
)


def _config_modules():
    names = ["kerassev.recipes.ssl_pretraining"]
    for info in pkgutil.iter_modules(kerassev.recipes.__path__):
        if info.ispkg:
            names.append(f"kerassev.recipes.{info.name}.config")
    return [importlib.import_module(n) for n in names]


def _dataclasses():
    found = []
    for module in _config_modules():
        for obj in vars(module).values():
            if dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def _presets():
    """(label, config) for every preset of every recipe config (classes with ``from_preset``)."""
    out = []
    for cls in _dataclasses():
        if hasattr(cls, "from_preset"):
            for name in ("paper", "smoke", "cpu"):
                if hasattr(cls, name):
                    out.append((f"{cls.__name__}.{name}", getattr(cls, name)()))
    return out


def _leaves(config, prefix=""):
    """(dotted key, value) of every non-dataclass field, nested settings blocks expanded."""
    for name in field_types(type(config)):
        value = getattr(config, name)
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _sample(kind):
    """A value of annotation ``kind`` unlike any default (for its non-None member)."""
    members = _union_members(kind)
    if members is not None:
        return _sample(next(m for m in members if m is not type(None)))
    if getattr(kind, "__origin__", None) is tuple:
        args = kind.__args__
        if len(args) == 2 and args[1] is Ellipsis:
            return (_sample(args[0]), _sample(args[0]))
        return tuple(_sample(a) for a in args)
    return {bool: True, int: 7, float: 0.25, str: "x"}[kind]


def test_the_recipe_configs_are_all_found():
    names = {cls.__name__ for cls in _dataclasses()}
    assert {"MraleConfig", "LearnerConfig", "CohenConfig", "CovidSSLConfig"} <= names
    assert {"CtLesionsConfig", "CtAffinityConfig", "SSLStage", "EncoderSpec"} <= names
    assert len(_presets()) >= 13


@pytest.mark.parametrize("cls", _dataclasses(), ids=lambda c: c.__name__)
def test_every_annotation_round_trips_a_typed_value_from_text(cls):
    for name, kind in field_types(cls).items():
        if dataclasses.is_dataclass(kind) or any(
            dataclasses.is_dataclass(m) for m in _union_members(kind) or ()
        ):
            continue  # a nested block: its own fields are checked under its own class
        value = _sample(kind)
        parsed = parse_value(to_text(value), kind)
        assert parsed == value and type(parsed) is type(value), (cls.__name__, name, parsed)


@pytest.mark.parametrize("label_config", _presets(), ids=lambda lc: lc[0])
def test_every_preset_value_round_trips_through_set(label_config):
    _, config = label_config
    for key, value in _leaves(config):
        again = apply_overrides(config, [f"{key}={to_text(value)}"])
        assert again == config, key


def test_fields_that_default_to_none_get_their_annotated_type():
    from kerassev.recipes.covid_ssl.config import CovidSSLConfig
    from kerassev.recipes.ct_affinity.config import CtAffinityConfig

    cfg = apply_overrides(CovidSSLConfig.smoke(), ["finetune_lr=0.01", "predictor_dim=16"])
    assert cfg.finetune_lr == 0.01 and isinstance(cfg.finetune_lr, float)
    assert cfg.predictor_dim == 16 and isinstance(cfg.predictor_dim, int)
    cfg = apply_overrides(CovidSSLConfig.smoke(), ["low_shot_methods=cross,byol"])
    assert cfg.low_shot_methods == ("cross", "byol")
    assert apply_overrides(cfg, ["low_shot_methods=none"]).low_shot_methods is None
    affinity = apply_overrides(CtAffinityConfig.smoke(), ["lesion_train_limit=5"])
    assert affinity.lesion_train_limit == 5 and isinstance(affinity.lesion_train_limit, int)


def test_nested_union_and_fixed_length_tuples():
    from kerassev.recipes.cohen.config import CohenConfig
    from kerassev.recipes.mrale.config import MraleConfig

    cfg = apply_overrides(MraleConfig.smoke(), ["ssl_stage_a.epochs=3", "ssl_stage_b.train=4"])
    assert cfg.ssl_stage_a.epochs == 3 and cfg.ssl_stage_b.train == 4
    assert apply_overrides(cfg, ["ssl_stage_b.train=all"]).ssl_stage_b.train == "all"
    cohen = apply_overrides(CohenConfig.smoke(), ["ssl=none"])
    assert cohen.ssl is None
    with pytest.raises(ValueError, match="'ssl' is none"):
        apply_overrides(cohen, ["ssl.epochs=3"])
    assert parse_value("0, 6", tuple[float, float]) == (0.0, 6.0)
    with pytest.raises(ValueError):
        parse_value("1,2,3", tuple[float, float])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("finetune_lr=abc", r"finetune_lr=abc: expected float or none"),
        ("ssl_epochs=2.5", r"ssl_epochs=2.5: expected int"),
        ("precise_bn=maybe", r"precise_bn=maybe: expected bool"),
        ("low_shot=0.1,lots", r"low_shot=0.1,lots: expected comma-separated floats"),
        ("finetune_lrr=0.1", r"unknown setting 'finetune_lrr'"),
        ("seed.x=1", r"'seed' has no sub-settings"),
        ("finetune_lr", r"expected KEY=VALUE"),
    ],
)
def test_a_bad_value_names_the_key_and_the_expected_type(item, message):
    from kerassev.recipes.covid_ssl.config import CovidSSLConfig

    with pytest.raises(ValueError, match=message):
        apply_overrides(CovidSSLConfig.smoke(), [item])


def test_a_bad_value_stops_the_cli_before_any_work(capsys):
    from kerassev.cli import main

    argv = ["reproduce", "covid-ssl", "--out", "/nonexistent/x", "--set", "finetune_lr=abc"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "finetune_lr=abc" in err and "float" in err and "Traceback" not in err
