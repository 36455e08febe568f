"""Compare's table: a star only on a strict best of a column that can be ranked, and no spread from round-off."""



from ganzoo.compare import Results, Stat, table_rows
from ganzoo.compare.report import best_labels, format_mean_std

from helpers import TINY as TINY_FLAGS

TINY = [*TINY_FLAGS, "--log-every", "4"]


def results_with(means: dict[str, dict[str, float]], budget=None) -> Results:
    return Results.from_dict(
        {"settings": {"budget": budget}, "real": {},
         "contenders": {label: {"model": label, "source": "trained here", "status": "ok",
                                "runs": [{"seed": 0, "run_dir": label, "scores": {}}], "parameters": {},
                                "summary": {k: {"mean": v, "std": 0.0} for k, v in values.items()}}
                        for label, values in means.items()}})


def test_stars_only_on_a_strict_best_of_a_rankable_column():
    r = results_with({"a": {"mnist_fd": 3.0, "train_time_s": 10.0}, "b": {"mnist_fd": 5.0, "train_time_s": 12.0}})
    assert best_labels(r, "mnist_fd", "lower") == {"a"} and best_labels(r, "train_time_s", "lower") == {"a"}
    tie = results_with({"a": {"classes_covered": 1.0}, "b": {"classes_covered": 1.0}})
    assert best_labels(tie, "classes_covered", "higher") == set()            # two collapsed models: no winner
    budget = results_with({"a": {"train_time_s": 12.0}, "b": {"train_time_s": 12.4}}, budget=12.0)
    assert best_labels(budget, "train_time_s", "lower") == set()            # an equal budget fixed it
    alone = results_with({"a": {"mnist_fd": 3.0}, "b": {}})
    assert best_labels(alone, "mnist_fd", "lower") == set()                 # nothing to beat
    assert format_mean_std(Stat(1.0, 2.512e-15)) == "1"                      # round-off is not a spread
    assert format_mean_std(Stat(1.0, 0.25)) == "1 ± 0.25"
    header, rows = table_rows(budget)
    assert not any(best for row in rows for _, best in row)
