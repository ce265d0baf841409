"""CSRF tokens and the login's redirect target."""

import pytest

from stageline.auth.principals import Principal
from stageline.domain.errors import Forbidden
from stageline.web.sessions import WebSession, check_csrf, csrf_key, csrf_token, safe_next


def session(token: str, key: bytes) -> WebSession:
    return WebSession(token, Principal("u", "user", "User"), csrf_token(key, token))


class TestCsrf:
    def test_a_token_is_bound_to_its_session_and_secret(self) -> None:
        key = csrf_key(b"master")
        assert csrf_token(key, "a") == csrf_token(key, "a")
        assert csrf_token(key, "a") != csrf_token(key, "b")
        assert csrf_token(key, "a") != csrf_token(csrf_key(b"other"), "a")

    def test_the_sessions_own_token_passes(self) -> None:
        key = csrf_key(b"master")
        check_csrf(session("a", key), csrf_token(key, "a"))

    @pytest.mark.parametrize("given", [None, "", "0" * 64])
    def test_a_missing_or_wrong_token_is_refused(self, given: str | None) -> None:
        with pytest.raises(Forbidden):
            check_csrf(session("a", csrf_key(b"master")), given)

    def test_another_sessions_token_is_refused(self) -> None:
        key = csrf_key(b"master")
        with pytest.raises(Forbidden):
            check_csrf(session("a", key), csrf_token(key, "b"))


class TestSafeNext:
    @pytest.mark.parametrize(
        ("given", "kept"),
        [
            ("/projects/p", "/projects/p"),
            ("/projects/p?page=2", "/projects/p?page=2"),
            (None, "/"),
            ("", "/"),
            ("//evil.example/", "/"),
            ("https://evil.example/", "/"),
            ("/\\\\evil.example", "/"),
        ],
    )
    def test_only_a_path_of_this_site_is_kept(self, given: str | None, kept: str) -> None:
        assert safe_next(given) == kept
