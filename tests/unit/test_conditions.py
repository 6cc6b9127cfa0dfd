from ak.core.conditions import find_condition, set_condition

OLD = [
    {"type": "A", "status": "True", "lastTransitionTime": "t0"},
    {"type": "B", "status": "False", "lastTransitionTime": "t0"},
]


def test_same_status_keeps_transition_time_and_position() -> None:
    result = set_condition(OLD, {"type": "A", "status": "True", "reason": "R"}, "t1")
    assert result == [
        {"type": "A", "status": "True", "reason": "R", "lastTransitionTime": "t0"},
        OLD[1],
    ]


def test_flip_moves_transition_time() -> None:
    result = set_condition(OLD, {"type": "B", "status": "True"}, "t1")
    assert result[1] == {"type": "B", "status": "True", "lastTransitionTime": "t1"}


def test_new_type_appended() -> None:
    result = set_condition(OLD, {"type": "C", "status": "True"}, "t1")
    assert [c["type"] for c in result] == ["A", "B", "C"]
    assert result[2]["lastTransitionTime"] == "t1"


def test_input_not_mutated() -> None:
    before = [dict(c) for c in OLD]
    set_condition(OLD, {"type": "A", "status": "False"}, "t1")
    assert before == OLD


def test_find_condition() -> None:
    assert find_condition(OLD, "B") is OLD[1]
    assert find_condition(OLD, "Z") is None
