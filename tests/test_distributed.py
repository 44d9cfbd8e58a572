"""DDP: where a process sits (torchrun's and SLURM's variables), data shards, gradients equal to one
process over the same global batch, rank-0-only outputs, checkpoints that move between DDP and one
process, exact resume, and a signal on any rank stopping all of them with one checkpoint.

Multi-process tests run 2 gloo processes on the CPU (OMP_NUM_THREADS=1), the way torchrun starts
them: the same program with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.config.schema import ConfigError
from cyclegan.data.sampling import EpochSampler
from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod
from cyclegan.runtime.distributed import (
    Place,
    expand_nodelist,
    first_host,
    gpu_index,
    rank_seed,
    resolve_place,
)
from cyclegan.runtime.strategy import SingleProcess, strategy_for
from cyclegan.training.builder import main, train
from cyclegan.training.signals import STOP_SIGNALS, Preempted
from cyclegan.training.state import unpack

from .conftest import ROOT, TINY, as_batch, make_method
from .test_resume import assert_same_weights

# ------------------------------------------------------------------ the process's place


def test_torchrun_variables_give_the_place() -> None:
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "MASTER_ADDR": "n1"}
    env["MASTER_PORT"] = "1234"
    place = Place.from_env(env)
    assert place == Place(3, 1, 8, "n1", 1234, "torchrun")
    assert not place.is_main and place.distributed


def test_slurm_variables_give_the_place() -> None:
    env = {
        "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1",
        "SLURM_NTASKS": "8",
        "SLURM_JOB_NODELIST": "gpu[003-005,007],login1",
        "SLURM_JOB_ID": "123456",
    }
    place = Place.from_env(env)
    assert place is not None
    assert (place.rank, place.local_rank, place.world_size) == (5, 1, 8)
    assert place.master_addr == "gpu003" and place.source == "slurm"
    assert place.master_port == 20000 + 123456 % 20000  # the same on every task of the job
    # MASTER_ADDR/MASTER_PORT exported by the user win over the derived ones.
    custom = Place.from_env({**env, "MASTER_ADDR": "head", "MASTER_PORT": "29400"})
    assert (custom.master_addr, custom.master_port) == ("head", 29400)


def test_submitit_local_variables_give_the_place() -> None:
    env = {
        "SUBMITIT_LOCAL_GLOBALID": "1",
        "SUBMITIT_LOCAL_LOCALID": "1",
        "SUBMITIT_LOCAL_NTASKS": "2",
        "SUBMITIT_LOCAL_JOB_ID": "4242",
    }
    place = Place.from_env(env)
    assert place == Place(1, 1, 2, "127.0.0.1", 20000 + 4242, "submitit_local")


def test_each_rank_gets_its_gpu() -> None:
    assert gpu_index(3, 8) == 3
    assert gpu_index(3, 1) == 0  # one GPU bound to each task
    with pytest.raises(ConfigError, match="one process per GPU"):
        gpu_index(4, 2)


def test_torchrun_variables_win_over_slurm_ones() -> None:
    env = {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "RANK": "1", "WORLD_SIZE": "2"}
    assert Place.from_env(env).source == "torchrun"
    assert Place.from_env({}) is None


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("node7", ["node7"]),
        ("node[003-005,007]", ["node003", "node004", "node005", "node007"]),
        ("a[1-2],b[09-10]", ["a1", "a2", "b09", "b10"]),
        ("rack[1-2]-n[1,3]", ["rack1-n1", "rack1-n3", "rack2-n1", "rack2-n3"]),
    ],
)
def test_compressed_nodelists_expand(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts
    assert first_host(nodelist) == hosts[0]


def test_strategy_resolution() -> None:
    torchrun = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    slurm = {"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "h"}
    assert resolve_place("auto", {}) == Place()  # today's single process
    assert resolve_place("auto", torchrun).world_size == 2
    assert resolve_place("auto", {**torchrun, "WORLD_SIZE": "1"}) == Place()
    assert resolve_place("auto", slurm) == Place()  # SLURM needs an explicit strategy=ddp
    assert resolve_place("ddp", slurm).world_size == 4
    assert resolve_place("single", torchrun) == Place()
    with pytest.raises(ConfigError, match="torchrun --nproc_per_node"):
        resolve_place("ddp", {})


def test_ddp_without_a_launcher_is_a_one_line_error(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=r"trainer.strategy=ddp needs .*torchrun"):
        train(compose_cfg(*TINY, "trainer.strategy=ddp"))
    with pytest.raises(ConfigError, match="use auto, single or ddp"):
        train(compose_cfg(*TINY, "trainer.strategy=dp"))


def test_rank_seeds_differ_and_rank_0_keeps_the_seed() -> None:
    assert rank_seed(7, 0) == 7
    assert len({rank_seed(s, r) for s in range(3) for r in range(4)}) == 12


# ------------------------------------------------------------------ data shards and reduction


@pytest.mark.parametrize("n", [8, 9])
def test_shards_are_disjoint_equal_and_cover_the_epoch(n: int) -> None:
    world = 2
    samplers = [EpochSampler(n, seed=3, rank=r, world_size=world) for r in range(world)]
    for s in samplers:
        s.set_epoch(1)
    shards = [[i for _, i in s] for s in samplers]
    assert len(shards[0]) == len(shards[1]) == samplers[0].shard_size == -(-n // world)
    assert set(shards[0]) | set(shards[1]) == set(range(n))
    if n % world == 0:
        assert not set(shards[0]) & set(shards[1])
    order = EpochSampler(n, seed=3).order(1)  # the single-process order, dealt out round-robin
    assert shards[0][:4] == order[0:8:2] and shards[1][:4] == order[1:8:2]
    # A resumed rank skips the samples it already trained on, within its own shard.
    samplers[1].set_epoch(1, start=2)
    assert [i for _, i in samplers[1]] == shards[1][2:]
    assert len(samplers[1]) == len(shards[1]) - 2


def test_single_process_reduction_is_the_identity() -> None:
    sums = torch.tensor([2.5, 0.25])
    one = SingleProcess(Place())
    assert torch.equal(one.reduce_window(sums), sums)
    cpu = torch.device("cpu")
    assert one.agree_on_signal(signal.SIGTERM, (signal.SIGTERM,), cpu) == signal.SIGTERM
    assert one.agree_on_signal(None, (signal.SIGTERM,), cpu) is None


# ------------------------------------------------------------------ gradients under DDP


def make_trainer(
    run_dir: Path, place: Place | None = None, dtype: torch.dtype = torch.float32
) -> CycleGANMethod:
    return make_method(dtype=dtype, strategy=strategy_for(place or Place()))


def global_batch(n: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """In float64, so the comparison sees the parallelism, not float32 rounding (a batch of 2
    and one of 4 sum in different orders: ~1e-5 relative in fp32)."""
    g = torch.Generator().manual_seed(1)
    return tuple(
        torch.rand(n, 3, size, size, generator=g, dtype=torch.float64) * 2 - 1 for _ in range(2)
    )  # type: ignore[return-value]


def grads_of(trainer: CycleGANMethod) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in trainer.model.named_parameters()}


def _grad_worker(rank: int, world: int, port: int, out: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    place = Place(rank=rank, local_rank=rank, world_size=world, master_port=port, source="torchrun")
    strategy = strategy_for(place)
    with strategy.session(torch.device("cpu")):
        trainer = make_trainer(out / f"rank{rank}", place, torch.float64)
        real_A, real_B = global_batch()
        per_rank = real_A.shape[0] // world
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        losses = trainer.training_step(as_batch(real_A[mine], real_B[mine]))
        sums = strategy.reduce_window(torch.stack([v.double() for v in losses.values()]))
        reduced = dict(zip(losses, sums.tolist(), strict=True))
        signum = strategy.agree_on_signal(
            signal.SIGTERM if rank else None, STOP_SIGNALS, torch.device("cpu")
        )
        assert signum == signal.SIGTERM  # rank 1's signal stops rank 0 too
        torch.save(
            {"grads": grads_of(trainer), "weights": trainer.model.state_dict(), "losses": reduced},
            out / f"rank{rank}.pt",
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gradients_equal_one_process_over_the_global_batch(tmp_path: Path) -> None:
    """2 ranks x 2 images: every gradient of G_AB, G_BA, D_A and D_B after one step equals a
    single process's over the 4 images (losses are batch means; the replay buffers are still
    filling, so D sees the same fakes)."""
    mp.spawn(_grad_worker, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = make_trainer(tmp_path / "single", dtype=torch.float64)
    losses = single.training_step(as_batch(*global_batch()))
    expected = grads_of(single)
    assert expected.keys() == ranks[0]["grads"].keys()
    assert {k.split(".")[0] for k in expected} == {"G_AB", "G_BA", "D_A", "D_B"}
    for key, grad in expected.items():
        for r in ranks:
            torch.testing.assert_close(r["grads"][key], grad, atol=1e-6, rtol=0, msg=key)
    assert_same_weights(ranks[0]["weights"], ranks[1]["weights"])  # the ranks stay in sync
    for key, value in ranks[0]["losses"].items():  # mean over ranks = loss over the batch
        assert value == pytest.approx(float(losses[key]), abs=1e-6), key


# ------------------------------------------------------------------ train.py under DDP

EVERY_STEP = [
    *TINY,
    "trainer.checkpoint_unit=step",
    "trainer.checkpoint_every=1",
    "trainer.keep_last=10",
    "trainer.sample_every=2",
    "logger=file",
]


def launch(
    args: list[str], run_dirs: list[Path], data: Path, script: Path = ROOT / "train.py"
) -> list[subprocess.Popen]:
    """Start train.py (or `script`) once per rank with the variables torchrun sets."""
    port = free_port()
    procs = []
    for rank, run_dir in enumerate(run_dirs):
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(len(run_dirs)),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
        }
        cmd = [sys.executable, str(script), *args, f"paths.data_dir={data}"]
        procs.append(
            subprocess.Popen(
                [*cmd, f"hydra.run.dir={run_dir}"],
                cwd=run_dir.parent,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return procs


def finish(procs: list[subprocess.Popen], timeout: float = 120) -> list[tuple[int, str]]:
    """Exit status and output of each process. communicate() drains the pipe while waiting (a
    plain wait() could block forever on a process whose output filled the pipe)."""
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    return [(p.returncode, out) for p, out in zip(procs, outputs, strict=True)]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 2-process run (2 epochs x 3 steps per rank, a checkpoint each step). Rank 1 is given
    its own Hydra directory, as torchrun's processes get differently time-stamped ones."""
    root = tmp_path_factory.mktemp("ddp")
    dirs = [root / "run", root / "rank1_dir"]
    results = finish(launch([*EVERY_STEP, "trainer.strategy=ddp"], dirs, root / "data"))
    outputs = "\n".join(
        f"--- rank {r}: exit {c}\n{out[-3000:]}" for r, (c, out) in enumerate(results)
    )
    assert [code for code, _ in results] == [0, 0], outputs
    assert "x 2 processes (DDP, global batch 2)" in results[0][1], outputs
    return dirs[0]


def test_ddp_run_writes_outputs_on_rank_0_only(ddp_run: Path) -> None:
    assert not (ddp_run.parent / "rank1_dir").exists()  # rank 1 used rank 0's directory
    names = sorted(p.name for p in ddp_run.iterdir())
    assert names == [
        ".hydra",
        "checkpoints",
        "contact",  # the fixed test images' translations, for sweep contact sheets
        "metrics.jsonl",
        "provenance.json",  # commit, command, versions, device: the main process's
        "report.html",
        "samples",
        "summary.json",
        "train.log",
    ]
    steps = [p.name for p in sorted((ddp_run / "checkpoints").glob("step_*.pt"))]
    assert steps == [f"step_{s:07d}.pt" for s in range(1, 7)]  # once per step, not per rank
    samples = sorted(p.name for p in (ddp_run / "samples").iterdir())
    assert samples == [f"step_{s:07d}.png" for s in (2, 4, 6)]
    rows = (ddp_run / "metrics.jsonl").read_text().splitlines()
    assert sum('"train/loss_G"' in r for r in rows) == 6  # one row per step, from rank 0
    last = load_checkpoint(ddp_run / "checkpoints" / "last.pt")
    assert last["step"] == 6 and len(last["ranks"]) == 2
    # Each rank kept its own replay buffer: 6 steps x 1 image, and different fakes.
    a0, a1 = (last["ranks"][r]["buffers"]["A"]["images"] for r in range(2))
    assert a0.shape[0] == a1.shape[0] == 6 and not torch.equal(a0, a1)
    assert torch.equal(last["buffers"]["A"]["images"], a0)  # the top level is rank 0's


def test_ddp_checkpoint_loads_in_one_process(ddp_run: Path, compose_cfg, tmp_path: Path) -> None:
    state = load_checkpoint(ddp_run / "checkpoints" / "last.pt")
    trainer = make_trainer(tmp_path)
    unpack(state, trainer, SingleProcess())  # what resuming does: shared state, then rank 0's
    assert_same_weights(trainer.model.state_dict(), state["model"])  # the plain, unwrapped keys
    assert torch.equal(
        torch.stack(trainer.buffer_A.images), state["ranks"][0]["buffers"]["A"]["images"]
    )
    # And a single-process run continues it (its networks, optimizers and schedule position).
    train(
        compose_cfg(
            *EVERY_STEP,
            "schedule.n_epochs=3",
            f"resume={ddp_run / 'checkpoints' / 'last.pt'}",
        )
    )
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 9


@pytest.mark.slow
def test_ddp_resume_is_bit_exact(ddp_run: Path, tmp_path: Path) -> None:
    """Resuming 2 ranks mid-epoch (step 4 of 6) ends with the uninterrupted run's weights."""
    resumed = tmp_path / "resumed"
    args = [
        *EVERY_STEP,
        "trainer.strategy=ddp",
        f"resume={ddp_run / 'checkpoints' / 'step_0000004.pt'}",
    ]
    for code, out in finish(launch(args, [resumed, resumed], tmp_path / "data")):
        assert code == 0, out[-3000:]
    a = load_checkpoint(ddp_run / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    assert_same_weights(a["model"], b["model"])
    for r in range(2):
        assert torch.equal(
            a["ranks"][r]["buffers"]["B"]["images"], b["ranks"][r]["buffers"]["B"]["images"]
        )


@pytest.mark.slow
def test_single_process_checkpoint_continues_under_ddp(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg(*EVERY_STEP))  # one process: 6 steps
    ddp = tmp_path / "ddp"
    args = [
        *EVERY_STEP,
        "trainer.strategy=ddp",
        f"resume={tmp_path / 'run' / 'checkpoints' / 'step_0000003.pt'}",
    ]
    results = finish(launch(args, [ddp, ddp], tmp_path / "data"))
    assert [code for code, _ in results] == [0, 0], results[0][1][-3000:]
    assert "written by 1 process(es), this run has 2" in results[0][1]
    last = load_checkpoint(ddp / "checkpoints" / "last.pt")
    assert last["step"] == 6 and len(last["ranks"]) == 2


def test_sigterm_on_one_rank_stops_all_with_one_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [
        *[o for o in TINY if not o.startswith("trainer.steps_per_epoch")],
        "schedule.n_epochs=500",
        "trainer.sample_every=0",
        "trainer.checkpoint_every=0",  # only the signal's checkpoint (and none at the end)
        "logger=file",
        "trainer.strategy=ddp",
    ]
    procs = launch(args, [run, run], tmp_path / "data")
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (
        not metrics.exists() or len(metrics.read_text().splitlines()) < 3
    ):
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGTERM)  # rank 1 only
    results = finish(procs)
    assert [code for code, _ in results] == [3, 3], results[0][1][-2000:] + results[1][1][-2000:]
    assert "continue with resume=auto" in results[0][1]
    files = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(files) == 2 and files[0] == "last.pt"  # last.pt and its one numbered twin
    stopped = load_checkpoint(run / "checkpoints" / "last.pt")
    assert files[1] == f"step_{stopped['step']:07d}.pt" and len(stopped["ranks"]) == 2
    assert f"at step {stopped['step']};" in results[1][1]  # both ranks stopped after that step


def test_preemption_hands_the_signal_to_the_previous_handler_after_saving(
    compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """submitit requeues from its SIGUSR2 handler: ours runs first (checkpoint), then its."""
    seen = []

    def launcher_handler(signum: int, frame: object) -> None:
        seen.append((signum, (tmp_path / "run" / "checkpoints" / "last.pt").is_file()))

    real_step = CycleGANMethod.training_step
    steps = iter(range(100))

    def step_then_signal(self, batch):
        if next(steps) == 1:
            os.kill(os.getpid(), signal.SIGUSR2)
        return real_step(self, batch)

    monkeypatch.setattr(CycleGANMethod, "training_step", step_then_signal)
    previous = signal.signal(signal.SIGUSR2, launcher_handler)
    try:
        with pytest.raises(SystemExit) as stop:
            main(compose_cfg(*TINY, "trainer.sample_every=0", "logger=file"))
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert stop.value.code == 3
    assert seen == [(signal.SIGUSR2, True)]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 2


def test_preempted_without_a_previous_handler_just_reports() -> None:
    exc = Preempted(signal.SIGTERM, 3, Path("last.pt"), signal.SIG_DFL)
    exc.hand_over()  # SIG_DFL is not a Python handler: nothing to run
    assert "SIGTERM at step 3" in str(exc)


# ------------------------------------------------------------------ SLURM launcher


def test_slurm_ddp_launcher_config_composes(compose_cfg) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose

    cfg = compose(
        "config",
        overrides=["hydra/launcher=slurm_ddp", "hydra.launcher.nodes=2"],
        return_hydra_config=True,
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 8, 8)
    assert launcher.max_num_timeout > 0 and launcher.signal_delay_s >= 60


def _task_pids(marker: str) -> list[int]:
    """PIDs of submitit's task processes whose command line names `marker` (the sweep folder)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if "submitit.core._submit" in cmd and marker in cmd:
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the task processes in /proc")
def test_submitit_ddp_job_requeues_from_the_checkpoint_on_sigusr2(tmp_path: Path) -> None:
    """The SLURM launcher's path, run by submitit's local executor: 2 tasks form one DDP job;
    SIGUSR2 (submitit's time-out notice) makes rank 0 save, then submitit requeue; the requeued
    tasks continue from last.pt, so every step is trained (and logged) exactly once."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    args = [
        *TINY,
        "schedule.n_epochs=10",
        "trainer.sample_every=0",
        "trainer.checkpoint_every=0",
        "logger=file",
        "trainer.strategy=ddp",
        "resume=auto",
        "hydra/launcher=submitit_local",
        "hydra.launcher.tasks_per_node=2",
        "hydra.launcher.timeout_min=10",
        f"paths.data_dir={tmp_path / 'data'}",
        f"hydra.sweep.dir={sweep}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "-m", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics = sweep / "0" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (
        not metrics.exists() or len(metrics.read_text().splitlines()) < 3
    ):
        time.sleep(0.1)
    pids = _task_pids(str(sweep))
    assert len(pids) == 2
    for pid in pids:  # SLURM signals every task of the job
        os.kill(pid, signal.SIGUSR2)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out[-3000:]
    run = sweep / "0"
    steps = [
        json.loads(line)["step"]
        for line in metrics.read_text().splitlines()
        if "train/loss_G" in line
    ]
    assert steps == list(range(1, 31))  # no step lost or repeated across the requeue
    assert "resumed from" in (run / "train.log").read_text()
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_0_log.err"))
    assert "Caught signal SIGUSR2" in logs  # submitit's handler ran (after ours), then requeued
    assert json.loads((run / "summary.json").read_text())["step"] == 30


NAN_ON_RANK_1 = """
import os, runpy, sys
import torch
from cyclegan.methods.cyclegan import CycleGAN

real_step, calls = CycleGAN.training_step, iter(range(10**6))


def poisoned(self, batch):
    losses = real_step(self, batch)
    if next(calls) == 1 and os.environ["RANK"] == "1":  # the second step, on rank 1 only
        losses["loss_cycle"] = torch.tensor(float("nan"))
    return losses


CycleGAN.training_step = poisoned
sys.argv[0] = {train!r}
runpy.run_path({train!r}, run_name="__main__")
"""


def test_nan_on_one_rank_stops_every_rank_with_exit_1(tmp_path: Path) -> None:
    """The loss reduction carries the NaN to every rank: all stop at the same step (no rank left
    waiting in a collective), each with exit status 1, and the checkpoint of step 1 stays."""
    script = tmp_path / "nan_on_rank_1.py"
    script.write_text(NAN_ON_RANK_1.format(train=str(ROOT / "train.py")))
    dirs = [tmp_path / "run", tmp_path / "rank1_dir"]
    results = finish(launch([*EVERY_STEP, "trainer.strategy=ddp"], dirs, tmp_path / "data", script))
    outputs = "\n".join(
        f"--- rank {r}: exit {c}\n{out[-2000:]}" for r, (c, out) in enumerate(results)
    )
    assert [code for code, _ in results] == [1, 1], outputs
    assert "non-finite loss at step 2: loss_cycle=nan" in results[0][1], outputs
    assert load_checkpoint(dirs[0] / "checkpoints" / "last.pt")["step"] == 1
