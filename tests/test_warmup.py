"""The 2D warm-up (sdskit/warmup.py): with the oracle prior, right SDS brings a noise picture to
the known target in a hundred steps; a sign-flipped gradient drives it away, and targets that are
not detached leave it where it started. A few seconds on the CPU."""

import pytest

from sdskit import warmup


@pytest.fixture(scope="module")
def wrong_classes(solution_class):
    class FlippedSign(solution_class):
        def sds_gradient(self, noise_pred, noise, w):
            return -w * (noise_pred - noise)

    class TargetsNotDetached(solution_class):
        def sds_targets(self, latents, grad):
            return latents - grad

    return FlippedSign, TargetsNotDetached


def test_right_sds_converges_to_the_target(solution_class):
    result = warmup.oracle_warmup(solution_class)
    print(f"\nwarm-up: RMS distance {result.start_error:.3f} -> {result.final_error:.4f}, "
          f"{result.seconds:.1f} s")
    assert result.start_error > 0.3
    assert result.final_error < 0.02, result.final_error
    assert len(result.snapshots) == len(result.snapshot_steps) == 5


def test_sign_flipped_sds_moves_away(wrong_classes):
    result = warmup.oracle_warmup(wrong_classes[0])
    assert result.final_error > result.start_error + 0.1, (result.start_error, result.final_error)


def test_undetached_targets_do_not_move_the_picture(wrong_classes):
    result = warmup.oracle_warmup(wrong_classes[1])
    assert abs(result.final_error - result.start_error) < 1e-6
