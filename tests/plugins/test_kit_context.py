"""The kit calls losses and regularisers as the training step does: with a step context (labels, D's main-pass
outputs with a class_logits extra, a D to run), so a component that reads it is tested on the path it trains on,
and a regulariser that does not train D, or returns no scalar, fails."""

import pytest
import torch.nn.functional as F

from ganzoo.plugins import registries
from ganzoo.registry import Entry
from ganzoo.testing import CheckFailed
from ganzoo.testing.suite import component_checks


class ContextClassLoss:
    """Reads only what the context carries: the GAN loss on the main pass plus the class term on its extras."""

    def d_loss(self, real_logits, fake_logits, context):
        assert context.d_real.logits is real_logits and context.d_fake.logits is fake_logits
        ce = F.cross_entropy(context.d_real.extras["class_logits"].float(), context.labels)
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean() + ce

    def g_loss(self, fake_logits, context):
        assert context.d_fake.logits is fake_logits and context.phase == "Gmain"
        ce = F.cross_entropy(context.d_fake.extras["class_logits"].float(), context.labels)
        return F.softplus(-fake_logits).mean() + ce


def run(kind, entry):
    with registries().by_kind(kind).temporary(entry):
        return {c.what: c for c in component_checks(kind, entry.name)}


def test_a_loss_that_reads_the_context_passes_every_loss_check():
    for check in run("loss", Entry("ctx-loss", ContextClassLoss, "", "test")).values():
        with registries().losses.temporary(Entry("ctx-loss", ContextClassLoss, "", "test")):
            check.run()


class Constant:
    def __call__(self, context):
        return 1.0 + 0 * context.discriminate(context.real).sum()     # runs D, trains nothing


class PerSample:
    def __call__(self, context):
        return context.discriminate(context.real).square()   # [B], not a scalar


class Fine:
    def __call__(self, context):
        x = context.real.detach().requires_grad_(True)
        return context.input_gradient(context.d_outputs_of(x).logits, x).square().mean()


@pytest.mark.parametrize("factory, message", [
    (Constant, "gives D's weights no gradient"),
    (PerSample, r"returned shape \(\d+,\); it must return a scalar float tensor")])
def test_the_kit_fails_a_regulariser_that_trains_nothing_or_returns_no_scalar(factory, message):
    entry = Entry("bad-reg", factory, "", "test")
    check = run("regularizer", entry)["penalty trains D"]
    with registries().regularizers.temporary(entry), pytest.raises(CheckFailed, match=message):
        check.run()


def test_a_regulariser_through_the_context_passes():
    entry = Entry("fine-reg", Fine, "", "test")
    with registries().regularizers.temporary(entry):
        for check in component_checks("regularizer", "fine-reg"):
            check.run()
