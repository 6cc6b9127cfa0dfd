import pytest

from ak.core.validation import is_dns_label, is_dns_subdomain, is_label_value, is_qualified_name


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a", True),
        ("a-b-1", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-a", False),
        ("a-", False),
        ("A", False),
        ("a.b", False),
        ("", False),
        ("a\n", False),
    ],
)
def test_dns_label(value: str, ok: bool) -> None:
    assert is_dns_label(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a.b.c", True),
        ("vk-ak-example", True),
        ("a" * 63 + "." + "b" * 63, True),
        ("a" * 254, False),
        ("a..b", False),
        (".a", False),
        ("", False),
    ],
)
def test_dns_subdomain(value: str, ok: bool) -> None:
    assert is_dns_subdomain(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("Ab_c.d-E", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("_a", False),
        ("a.", False),
        ("a b", False),
        ("a\n", False),
    ],
)
def test_label_value(value: str, ok: bool) -> None:
    assert is_label_value(value) is ok


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("app", True),
        ("example.com/app", True),
        ("app.kubernetes.io/managed-by", True),
        ("/app", False),
        ("Example.com/app", False),
        ("example.com/", False),
        ("", False),
        ("a/b/c", False),
    ],
)
def test_qualified_name(key: str, ok: bool) -> None:
    assert is_qualified_name(key) is ok
