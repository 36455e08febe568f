"""Compare's table: a star only on a best beyond noise of a column that can be ranked, and no spread from round-off."""



from ganzoo.compare import Results, Stat, table_rows
from ganzoo.compare.report import best_labels, format_interval

from helpers import TINY as TINY_FLAGS

TINY = [*TINY_FLAGS, "--log-every", "4"]


def results_with(per_seed: dict[str, dict[str, list[float]]], budget=None) -> Results:
    """A comparison as results.json holds it: per model, one run per seed with these numbers."""
    contenders = {}
    for label, values in per_seed.items():
        seeds = max((len(v) for v in values.values()), default=1)
        runs = [{"seed": i, "run_dir": label, "train_time_s": values.get("train_time_s", [None] * seeds)[i],
                 "scores": {k: v[i] for k, v in values.items() if k != "train_time_s"}} for i in range(seeds)]
        contenders[label] = {"model": label, "source": "trained here", "status": "ok", "runs": runs, "parameters": {}}
    return Results.from_dict({"settings": {"budget": budget}, "real": {}, "contenders": contenders})


def test_stars_only_on_a_best_beyond_noise_of_a_rankable_column():
    # a is lower than b on every seed by about 2: the paired interval excludes zero
    r = results_with({"a": {"mnist_fd": [3.0, 9.0, 6.0], "train_time_s": [10.0, 11.0, 10.5]},
                      "b": {"mnist_fd": [5.0, 11.2, 7.9], "train_time_s": [12.0, 13.1, 12.4]}})
    assert best_labels(r, "mnist_fd", "lower") == {"a"} and best_labels(r, "train_time_s", "lower") == {"a"}
    tie = results_with({"a": {"classes_covered": [1.0, 1.0]}, "b": {"classes_covered": [1.0, 1.0]}})
    assert best_labels(tie, "classes_covered", "higher") == set()            # two collapsed models: no winner
    budget = results_with({"a": {"train_time_s": [12.0, 12.1]}, "b": {"train_time_s": [12.4, 12.6]}}, budget=12.0)
    assert best_labels(budget, "train_time_s", "lower") == set()            # an equal budget fixed it
    alone = results_with({"a": {"mnist_fd": [3.0]}, "b": {}})
    assert best_labels(alone, "mnist_fd", "lower") == set()                 # nothing to beat
    one_seed = results_with({"a": {"mnist_fd": [3.0]}, "b": {"mnist_fd": [30.0]}})
    assert best_labels(one_seed, "mnist_fd", "lower") == set()              # one seed: no interval, no winner
    assert format_interval(Stat(1.0, 2.512e-15, 1.0 - 1e-15, 1.0 + 1e-15, 3)) == "1"   # round-off is no spread
    assert format_interval(Stat(1.0, 0.25, 0.5, 1.5, 3)) == "1 [0.5, 1.5]"
    assert format_interval(Stat(1.0, 0.0, None, None, 1)) == "1"            # one seed: never "± 0"
    header, rows = table_rows(budget)
    assert not any(best for row in rows for _, best in row)
