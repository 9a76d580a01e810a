"""The lockout cannot be used as a weapon, and brute force stays impossible (issue 13, item 6).

Failures count per account *and* client address: a stranger who fails on purpose locks the
account only for their own address, after being slowed down; the owner elsewhere logs in; an
attack from many addresses hits the account-wide ceiling, which the owner lifts at once with a
code mailed to the account. Answers never reveal whether an account exists.
"""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.accounts_helpers import create_operator_user, csrf_from
from tests.integration.accounts.test_rate_limits import _ip, client_from

HTML = {"accept": "text/html"}


def _try(c, login: str, password: str):  # noqa: ANN001, ANN202
    token = csrf_from(c, "/login")
    return c.post("/login", data={"_csrf": token, "login": login, "password": password}, headers=HTML,
                  follow_redirects=False)


def _alert(r) -> str:  # noqa: ANN001
    return r.text.split('role="alert">')[1].split("<")[0]


def _age(engine, seconds: int = 120) -> None:  # noqa: ANN001
    """Move every recorded failure into the past, as if the client had waited."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE login_failures SET last_failed_at = last_failed_at - make_interval(secs => :s)"),
                     {"s": seconds})


def test_failures_slow_down_then_lock_only_the_attackers_address(app, engine) -> None:  # noqa: ANN001
    victim = create_operator_user(engine)
    attacker_ip = _ip()
    with client_from(app, attacker_ip) as attacker:
        answers = []
        for i in range(3):
            r = _try(attacker, victim["account_name"], "Wrong!pass1")
            assert r.status_code == 400, (i, r.status_code)
            answers.append(_alert(r))
        # the 4th try at once is slowed down: 429 with Retry-After, and the password is not even checked
        r = _try(attacker, victim["account_name"], victim["password"])
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert "please wait" in r.text
        for _ in range(2):
            _age(engine)
            r = _try(attacker, victim["account_name"], "Wrong!pass1")
            assert r.status_code == 400
        # five failures: locked for this address, the right password included, with the way out offered
        _age(engine)
        r = _try(attacker, victim["account_name"], victim["password"])
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 800
        assert "locked" in r.text and "/login/unlock" in r.text
        # a name that is no account goes through exactly the same answers
        ghost = "nobody_" + victim["account_name"]
        ghost_answers = [_alert(_try(attacker, ghost, "Wrong!pass1")) for _ in range(3)]
        assert ghost_answers == answers
        for _ in range(2):
            _age(engine)
            _try(attacker, ghost, "Wrong!pass1")
        _age(engine)
        r2 = _try(attacker, ghost, "Wrong!pass1")
        assert r2.status_code == 429 and _alert(r2) == _alert(r)
    # the owner, from anywhere else, is not locked out
    with client_from(app, _ip()) as owner:
        r = _try(owner, victim["account_name"], victim["password"])
        assert r.status_code in (302, 303), r.status_code


def test_a_spread_attack_locks_the_account_and_the_owner_unlocks_it_by_mail(mail_app, engine, inbox) -> None:  # noqa: ANN001
    victim = create_operator_user(engine)
    ceiling = mail_app.state["settings"].accounts.account_failures_per_hour
    with engine.begin() as conn:  # as if `ceiling` failures had come from many addresses this hour
        uid = conn.execute(text("SELECT id FROM users WHERE account_name = :a"), {"a": victim["account_name"]}).scalar()
        conn.execute(text("INSERT INTO login_failures (account_key, client, failures, last_failed_at) "
                          "SELECT 'u:' || :u, '10.99.' || g || '.1', 1, now() - interval '10 minutes' "
                          "FROM generate_series(1, :n - 1) g"), {"u": uid, "n": ceiling})
    with client_from(mail_app, _ip()) as attacker:
        assert _try(attacker, victim["account_name"], "Wrong!pass1").status_code == 400  # the 100th
    with client_from(mail_app, _ip()) as owner:
        r = _try(owner, victim["account_name"], victim["password"])
        assert r.status_code == 429 and "/login/unlock" in r.text  # locked everywhere now
        token = csrf_from(owner, "/login/unlock")
        r = owner.post("/login/unlock/code", data={"_csrf": token, "login": victim["account_name"]}, headers=HTML)
        assert r.status_code == 200 and "unlock code was sent" in r.text
        code = inbox.code_for(f"{victim['account_name']}@example.com")
        r = owner.post("/login/unlock", data={"_csrf": token, "login": victim["account_name"], "code": "000000"
                                              if code != "000000" else "111111"}, headers=HTML)
        assert r.status_code == 400  # a wrong code unlocks nothing
        r = owner.post("/login/unlock", data={"_csrf": token, "login": victim["account_name"], "code": code},
                       headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?unlocked=1"
        r = _try(owner, victim["account_name"], victim["password"])
        assert r.status_code in (302, 303)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM login_failures WHERE account_key = 'u:' || :u"),
                            {"u": uid}).scalar() == 0


def test_unlock_answers_the_same_for_any_name(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    token = csrf_from(client, "/login/unlock")
    texts = []
    for name in (op["account_name"], "no_such_account_here"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM verification_codes WHERE purpose = 'unlock'"))
        r = client.post("/login/unlock/code", data={"_csrf": token, "login": name}, headers=HTML)
        assert r.status_code == 200
        texts.append(re.sub(r'value="[^"]*"', "", r.text))
    assert texts[0] == texts[1]
    r = client.post("/login/unlock", data={"_csrf": token, "login": "no_such_account_here", "code": "123456"},
                    headers=HTML)
    assert r.status_code == 400 and "wrong or has expired" in r.text
