"""``precision = auto | float32 | bfloat16 | float16``: what auto picks, and why."""

from __future__ import annotations

import keras
import pytest

from kerassev.precision import PRECISIONS, apply_precision, cpu_flags, resolve_precision


def test_auto_picks_bf16_on_amx_or_avx512_bf16_cpus():
    for flags in ({"amx_bf16", "avx512f"}, {"avx512_bf16"}):
        choice = resolve_precision("auto", flags=flags, gpu=None)
        assert choice.policy == "mixed_bfloat16" and "bf16" in choice.reason


def test_auto_is_float32_without_hardware_support_and_fp16_on_tensor_core_gpus():
    assert resolve_precision("auto", flags={"avx2"}, gpu=None).policy == "float32"
    choice = resolve_precision("auto", flags={"amx_bf16"}, gpu="NVIDIA T4")
    assert choice.policy == "mixed_float16" and "T4" in choice.reason


@pytest.mark.parametrize(
    ("setting", "policy"),
    [("float32", "float32"), ("bfloat16", "mixed_bfloat16"), ("float16", "mixed_float16")],
)
def test_explicit_settings(setting, policy):
    choice = resolve_precision(setting)
    assert choice.policy == policy and choice.to_dict()["setting"] == setting


def test_unknown_setting_names_the_choices():
    with pytest.raises(ValueError, match="auto, float32, bfloat16, float16"):
        resolve_precision("fp8")
    assert PRECISIONS[0] == "auto"


def test_cpu_flags_reads_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 amx_bf16\n")
    assert cpu_flags(info) == {"fpu", "sse2", "amx_bf16"}
    assert cpu_flags(tmp_path / "absent") == set()


def test_apply_sets_the_global_policy():
    try:
        assert apply_precision("bfloat16").policy == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
