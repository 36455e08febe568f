"""A data-parallel rank's own duties, checked in one process (the collectives are what torchrun's tests in
test_distributed.py cover): only rank 0 writes, and each rank draws its own random stream."""

import torch

from ganzoo.train import Trainer
from ganzoo.training.distribution import Ranks

from helpers import fake_data, tiny_config


def rank_of_two(rank: int) -> Ranks:
    """Rank `rank` of a two-process run, its collectives standing in for a group of one: rank 0's verdict
    (nothing failed) reaches it, averages are its own."""
    ranks = Ranks.__new__(Ranks)
    ranks.rank, ranks.world, ranks.backend, ranks.sync_bn, ranks.cpu_group, ranks.pending_vote = \
        rank, 2, "gloo", False, None, None
    ranks.broadcast_text = lambda text: text if rank == 0 else ""
    ranks.average = lambda tensor: tensor
    ranks.average_gradients = lambda optimizer: None
    return ranks


def test_only_rank_0_writes_the_checkpoint_and_the_generator_file(tmp_path):
    written = {}
    for rank in (0, 1):
        config = tiny_config(tmp_path / f"rank{rank}")
        trainer = Trainer(config, fake_data(), strategy=rank_of_two(rank))
        trainer.save_checkpoint()
        written[rank] = sorted(p.name for p in (tmp_path / f"rank{rank}").rglob("*") if p.is_file())
    assert "checkpoint.safetensors" in written[0] and "dcgan.safetensors" in written[0]
    assert written[1] == []                                  # rank 1 writes nothing, not even a copy


def test_each_rank_draws_its_own_random_stream_and_leaves_the_shared_one():
    """Inside a step's own stream, rank 0 and rank 1 draw differently (a penalty's mixing, augmentation),
    the same rank at the same step the same; outside it the shared stream is where it was."""
    torch.manual_seed(5)
    shared = torch.rand(4)
    draws = {}
    for rank in (0, 1, 0):
        torch.manual_seed(5)
        with rank_of_two(rank).own_random_stream(seed=7, step=3):
            draws.setdefault(rank, []).append(torch.rand(8))
        assert torch.equal(torch.rand(4), shared)           # the shared stream, untouched
    assert not torch.equal(draws[0][0], draws[1][0])
    assert torch.equal(draws[0][0], draws[0][1])
    with rank_of_two(0).own_random_stream(seed=7, step=4):
        assert not torch.equal(torch.rand(8), draws[0][0])  # another step, another stream
