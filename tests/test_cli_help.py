"""``--help``: every option says what it does, and its default where it has one."""

from __future__ import annotations

import argparse

import pytest

from kerassev.cli import build_parser

# predict and segment are left to their own module's owner (issue 21 items 4-7) for now.
UNCHECKED = {"predict", "segment"}


def _options(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings and not isinstance(
            action, argparse._HelpAction | argparse._VersionAction
        ):
            yield " ".join(path), action


OPTIONS = [(cmd, a) for cmd, a in _options(build_parser()) if cmd.split()[0] not in UNCHECKED]


@pytest.mark.parametrize(
    ("command", "action"), OPTIONS, ids=[f"{c} {a.option_strings[-1]}" for c, a in OPTIONS]
)
def test_every_option_says_what_it_does_and_its_default(command, action):
    text = action.help or ""
    assert len(text.split()) >= 3, f"{command} {action.option_strings}: no help"
    if action.required:
        assert "required" in text
    elif action.default not in (None, False, [], argparse.SUPPRESS):
        assert "default" in text and str(action.default) in text, (command, text)


def test_preset_help_names_each_preset_and_the_default():
    parser = build_parser()
    help_text = " ".join(
        a.help
        for cmd, a in _options(parser)
        if cmd == "reproduce covid-ssl" and "--preset" in a.option_strings
    )
    assert "default smoke" in help_text and all(p in help_text for p in ("cpu", "paper"))
