"""JSON nested past Python's parser depth, from KIE or from someone posing as it, is bad input
(kie/ turns it into its own errors), never a RecursionError out of kie/."""

from __future__ import annotations

import pytest

from kie.callbacks import MalformedCallback, parse_callback
from kie.envelope import read
from kie.errors import KieError
from kie.fields import json_object

pytestmark = pytest.mark.timeout(30)
DEEP = "[" * 100_000 + "]" * 100_000


def test_a_deep_callback_body_is_malformed() -> None:
    with pytest.raises(MalformedCallback):
        parse_callback(DEEP.encode())


def test_a_deep_answer_is_an_error_of_kie_not_a_recursion() -> None:
    with pytest.raises(KieError):
        read(200, DEEP.encode(), "application/json")


def test_a_deep_result_json_is_no_result() -> None:
    assert json_object(DEEP) == {}
