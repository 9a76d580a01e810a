"""Pure checks of what people type at registration: credit code, phone, account name, password.

>>> credit_code_check_char("9144030071526726X")
'G'
>>> is_valid_credit_code("9144030071526726XG"), is_valid_credit_code("9144030071526726X1")
(True, False)
>>> operator_id_from_credit_code("9144030071526726XG")
'71526726X'
>>> is_valid_phone("13800138000"), is_valid_phone("12800138000"), is_valid_phone("")
(True, False, False)
>>> password_problem("Passw0rd!zh") is None, password_problem("short1A") is not None
(True, True)
>>> is_valid_account_name("zh_ops01"), is_valid_account_name("1abc"), is_valid_account_name("13800138000")
(True, False, False)
"""

from __future__ import annotations

import re

__all__ = [
    "CREDIT_CODE_CHARS",
    "credit_code_check_char",
    "credit_code_problem",
    "is_valid_account_name",
    "is_valid_credit_code",
    "is_valid_email",
    "is_valid_phone",
    "normalize_credit_code",
    "operator_id_from_credit_code",
    "password_problem",
]

# GB 32100-2015: 31 characters (no I, O, Z, S, V) and the weights 3^(i) mod 31 of positions 1–17.
CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
_ACCOUNT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def normalize_credit_code(code: str | None) -> str:
    """Upper case without spaces: what people paste often has both."""
    return re.sub(r"\s+", "", code or "").upper()


def credit_code_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code from its first 17."""
    total = sum(CREDIT_CODE_CHARS.index(ch) * w for ch, w in zip(first17, _WEIGHTS, strict=True))
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """None when ``code`` is a well-formed credit code with the right check digit, else why not."""
    if len(code) != 18:
        return "统一社会信用代码应为 18 位 / the credit code has 18 characters"
    if not _CREDIT_RE.match(code):
        return "统一社会信用代码含有无效字符 / the credit code contains invalid characters"
    if credit_code_check_char(code[:17]) != code[17]:
        return "统一社会信用代码校验位不正确 / the credit code's check digit is wrong"
    return None


def is_valid_credit_code(code: str) -> bool:
    return credit_code_problem(code) is None


def operator_id_from_credit_code(code: str) -> str:
    """The protocol's OperatorID: characters 9–17 of the credit code (the organisation code)."""
    return code[8:17]


def is_valid_phone(phone: str) -> bool:
    """A mainland mobile number (11 digits, 1[3-9]…)."""
    return bool(_PHONE_RE.match(phone or ""))


def is_valid_email(email: str) -> bool:
    return len(email or "") <= 254 and bool(_EMAIL_RE.match(email or ""))


def is_valid_account_name(name: str) -> bool:
    """4–32 letters, digits or ``_``, starting with a letter (so it never looks like a phone)."""
    return bool(_ACCOUNT_RE.match(name or ""))


def password_problem(password: str, *, account_name: str | None = None) -> str | None:
    """The strength rule: 8–64 characters with at least three of lower, upper, digit, symbol."""
    if len(password) < 8 or len(password) > 64:
        return "密码长度应为 8–64 位 / the password needs 8–64 characters"
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    if classes < 3:
        return ("密码须包含大写字母、小写字母、数字、符号中的至少三类 / "
                "the password needs three of: lower case, upper case, digits, symbols")
    if account_name and account_name.lower() in password.lower():
        return "密码不能包含账户名 / the password must not contain the account name"
    return None
