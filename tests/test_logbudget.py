from switchboard.logbudget import LogBudget


def test_lines_beyond_the_budget_are_counted_and_reported_in_the_next_window() -> None:
    budget = LogBudget(per_second=2)
    assert budget.take(10.0) == 0
    assert budget.take(10.1) == 0
    assert budget.take(10.2) is None
    assert budget.take(10.9) is None
    assert budget.take(11.0) == 2  # the first line of the next second tells of the two
    assert budget.take(11.5) == 0
