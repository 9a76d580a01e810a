"""Pure checks of the accounts domain (no database): credit codes, phones, passwords, Markdown."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.accounts import validation as v
from services.portal import content


@pytest.mark.parametrize("module", [v, content])
def test_doctests(module) -> None:  # noqa: ANN001
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


@given(st.text(alphabet=v.CREDIT_CODE_CHARS, min_size=17, max_size=17))
def test_every_code_has_exactly_one_check_character(first17: str) -> None:
    good = first17 + v.credit_code_check_char(first17)
    # the fixed positions (administrative division code) must be digits for the code to be well formed
    if not first17[2:8].isdigit():
        return
    assert v.is_valid_credit_code(good)
    assert v.operator_id_from_credit_code(good) == first17[8:17]
    for ch in v.CREDIT_CODE_CHARS:
        if ch != good[17]:
            assert not v.is_valid_credit_code(first17 + ch)


@pytest.mark.parametrize("code", ["9144030071526726XG", "91350100M000100Y43", "911100001000079554"])
def test_published_credit_codes_are_valid(code: str) -> None:
    assert v.is_valid_credit_code(code)


@pytest.mark.parametrize("code", ["", "9144030071526726X", "9144030071526726XGG", "9144030071526726IG",
                                  "91440300715267260G"])
def test_bad_credit_codes(code: str) -> None:
    assert v.credit_code_problem(code) is not None


def test_normalize_credit_code() -> None:
    assert v.normalize_credit_code(" 9144 0300 7152 6726 xg ") == "9144030071526726XG"
    assert v.normalize_credit_code(None) == ""


@pytest.mark.parametrize("phone,ok", [("13800138000", True), ("19912345678", True), ("12800138000", False),
                                      ("1380013800", False), ("138001380001", False), ("+8613800138000", False)])
def test_phones(phone: str, ok: bool) -> None:
    assert v.is_valid_phone(phone) is ok


@pytest.mark.parametrize("password,ok", [("Passw0rd!zh", True), ("password", False), ("PASSWORD12", False),
                                         ("Password12", True), ("pass word 1!", True), ("Ab1!", False), ("x" * 65, False)])
def test_password_rule(password: str, ok: bool) -> None:
    assert (v.password_problem(password) is None) is ok


def test_password_must_not_contain_the_account_name() -> None:
    assert v.password_problem("Zhops01!abc", account_name="zhops01") is not None


def test_markdown_is_sanitised() -> None:
    html = str(content.render_markdown('[a](https://example.com "t") <iframe src="x"></iframe> ![i](javascript:x)'))
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer"' in html
    assert "<iframe" not in html and 'src="javascript' not in html
