"""A whole training step recorded once as a CUDA graph and replayed: one launch per step.

At 256 px and batch 1 a CycleGAN step is some two thousand small kernels, and an H200 finishes
them faster than Python and the CUDA driver can issue them (the step is launch-bound: bf16 and
compilation change nothing there). A CUDA graph records the kernels of one step with their
arguments and replays them with one call; the host cost of a step becomes a copy of the batch
into the graph's input tensors and a replay.

Replay repeats the recorded kernels on the recorded memory, so the step must be written for it:
- no host reads (`.item()`, `float()`, `if tensor`): capture fails on them, and any Python decision
  is frozen at capture (`DeviceReplayBuffer` and `LossWindow` exist for this);
- optimizers built with `capturable=True` (step counts on the device; `fused=True` is allowed) and
  learning rates as 0-d device tensors, which torch's LR schedulers update in place (`fill_`), so
  the recorded kernels read the current rate;
- random numbers from the device's default generator (a graph registers it, so every replay
  draws new numbers) or from generators passed in `generators=`;
- state that the step allocates on first use (Adam's moments, the replay buffers' stores)
  exists before capture: the warm-up steps create it;
- autocast with `cache_enabled=False` (its weight cache would be recorded as stale copies);
  no fp16 loss scaling (`GradScaler` reads `found_inf` on the host).
A batch of another shape (the last, smaller batch of an epoch) runs eagerly, on the same
parameters and optimizer state, and the graph goes on being used for full batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

Batch = Mapping[str, torch.Tensor]
Step = Callable[[Batch], dict[str, torch.Tensor]]


class CapturedStep:
    """`step(batch) -> {name: tensor}` run eagerly `warmup` times, then captured and replayed.

    The returned tensors are the graph's own outputs, overwritten by the next call: read or
    accumulate them (e.g. `LossWindow.add`) before calling again.
    """

    def __init__(
        self, step: Step, warmup: int = 3, generators: Sequence[torch.Generator] = ()
    ) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError(
                "CUDA graphs need a CUDA device; set trainer.cuda_graphs=false on this machine"
            )
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1 (state must exist before capture), got {warmup}")
        self.step = step
        self.warmup = warmup
        self.generators = tuple(generators)
        self.calls = 0
        self.eager_calls = 0  # calls run eagerly (warm-up, other shapes)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_inputs: dict[str, torch.Tensor] = {}
        self.static_outputs: dict[str, torch.Tensor] = {}
        # Warm-up runs on a side stream, as capture does, so that lazily created per-stream
        # state (cuBLAS workspaces, cuDNN plans) exists for the capture stream.
        self.stream = torch.cuda.Stream()

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.calls += 1
        if self.graph is not None:
            if {k: v.shape for k, v in batch.items()} != {
                k: v.shape for k, v in self.static_inputs.items()
            }:
                self.eager_calls += 1
                return self.step(batch)
            for key, static in self.static_inputs.items():
                static.copy_(batch[key], non_blocking=True)
            self.graph.replay()
            return self.static_outputs
        if self.calls <= self.warmup:
            self.eager_calls += 1
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                out = self.step(batch)
            torch.cuda.current_stream().wait_stream(self.stream)
            return out
        return self._capture(batch)

    def _capture(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Record one step on copies of `batch`, then replay it once (capture runs nothing)."""
        self.static_inputs = {k: v.clone() for k, v in batch.items()}
        graph = torch.cuda.CUDAGraph()
        for generator in self.generators:
            graph.register_generator_state(generator)
        torch.cuda.synchronize()  # warm-up work done before recording begins
        with torch.cuda.graph(graph):
            self.static_outputs = self.step(self.static_inputs)
        self.graph = graph
        graph.replay()
        return self.static_outputs
