"""Training, taken apart: the step (step.py), the loop (loop.py), what the loop tells the world
(observers.py), the divergence guard (guard.py) and distribution as a strategy (distribution.py).
`ganzoo.train.Trainer` puts them together for one run."""
