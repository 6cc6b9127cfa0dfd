"""The profile summariser used to read benchmark profiles."""

from __future__ import annotations

from tests.testbed.profile import frame_name, report, summarise

RAW = [
    "main (ak/run.py:10);request (ak/kube/client.py:5);loads (json/__init__.py:3) 6\n",
    "main (ak/run.py:11);request (ak/kube/client.py:7) 3\n",
    "main (ak/run.py:10);walk (ak/x.py:1);walk (ak/x.py:2) 1\n",
    "garbage line\n",
]


def test_lines_of_one_function_are_merged() -> None:
    assert frame_name("request (ak/kube/client.py:5)") == "request ak/kube/client.py"
    assert frame_name("<module>") == "<module>"


def test_inclusive_counts_each_sample_once_and_self_counts_the_top() -> None:
    s = summarise(RAW)
    assert s.total == 10
    assert s.inclusive["main ak/run.py"] == 10
    assert s.inclusive["request ak/kube/client.py"] == 9
    assert s.inclusive["walk ak/x.py"] == 1  # recursion is not counted twice
    assert s.own == {"loads json/__init__.py": 6, "request ak/kube/client.py": 3, "walk ak/x.py": 1}
    text = report(s, 2)
    assert "100.0% main ak/run.py" in text and " 60.0% loads json/__init__.py" in text
