"""Sandboxed runs spread over a Ray cluster's CPUs, for when programs, not the Receiver, are
the bottleneck (HumanEval and MBPP with many samples). Each program runs in the sandbox of
the node that takes it; verdicts come back in order and name the isolation that ran them."""

from __future__ import annotations

from collections.abc import Sequence

from persuasion_gym.cluster import connect
from persuasion_gym.errors import ConfigError
from persuasion_gym.sandbox.isolation import Mode
from persuasion_gym.sandbox.limits import Limits
from persuasion_gym.sandbox.runner import CodeCheck, Sandbox, Verdict

_LOCAL: dict[tuple[str, Limits], Sandbox] = {}


def _run_here(mode: Mode, limits: Limits, check: CodeCheck) -> Verdict:
    """On a Ray worker: one program in this node's sandbox (probed once per worker), in the
    isolation the driver chose: a node that cannot give it fails rather than falls back."""
    sandbox = _LOCAL.setdefault((mode, limits), Sandbox(mode, limits, workers=1))
    try:
        _ = sandbox.isolation
    except ConfigError as exc:
        import socket

        raise ConfigError(
            f"the Ray node {socket.gethostname()} cannot run the sandbox the driver chose ({mode}): {exc} on "
            "every node, or pass isolation='rlimits' to run every program on the announced fallback"
        ) from None
    return sandbox.run(check)


class RaySandbox(Sandbox):
    """A ``Sandbox`` whose ``run_many`` runs each program as a Ray task of ``num_cpus`` CPUs.

    ``address``: the cluster (default ``$RAY_ADDRESS``, else Ray starts here). Every node
    needs persuasion-gym installed, and bubblewrap for the sandbox proper. The workers run the
    isolation this process resolved (``"auto"`` probes here), so the isolation the verdicts
    and the provenance name is the one that ran: a worker without bubblewrap fails loudly.
    """

    def __init__(self, isolation: Mode = "auto", limits: Limits | None = None, address: str | None = None,
                 num_cpus: float = 1):
        super().__init__(isolation, limits)
        self.address, self.num_cpus = address, num_cpus

    def run_many(self, checks: Sequence[CodeCheck], progress: bool = False) -> list[Verdict]:
        if not checks:
            return []
        ray = connect(self.address)
        remote = ray.remote(num_cpus=self.num_cpus)(_run_here)
        refs = [remote.remote(self.worker_mode, self.limits, check) for check in checks]
        if progress:
            from tqdm.auto import tqdm

            left = list(refs)
            with tqdm(total=len(refs), desc="running programs (ray)", unit="program") as bar:
                while left:
                    done, left = ray.wait(left, num_returns=1)
                    bar.update(len(done))
        try:
            return list(ray.get(refs))
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, ConfigError):  # the worker's own clear error, without Ray's traceback
                raise ConfigError(str(exc.cause)) from None
            raise

    @property
    def worker_mode(self) -> Mode:
        """The mode the workers get: the isolation resolved here, never ``"auto"``."""
        return "bwrap" if self.isolation.isolated else "rlimits"

    def __repr__(self) -> str:
        return f"RaySandbox(isolation={self.mode!r})"
