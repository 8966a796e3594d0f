"""The checks of exercise 6, each a function that returns the problems it found, in the course's words.

They judge what a run left behind (its log, its checkpoint, the reporter's record of the pictures each DataLoader pass
handed out) and the batch script's text, never what the student's program printed about itself. tests/test_checkpoint.py
runs each on the course's files and on deliberately broken copies; the cluster verdict uses the same ones.
"""
from __future__ import annotations

import re
from pathlib import Path

# largest_difference: the largest loss difference of two logs, step by step (tests/test_checkpoint.py prints it)
from harness.exercises.ddp.checks import TOLERANCE, first_step_off, largest_loss_difference as largest_difference
from harness.exercises.ddp.runs import read_log
from harness.sbatch import read as read_sbatch
from harness.exercises.checkpoint.runs import CHECKPOINT, PROGRAM, Start

# What a checkpoint must hold to resume as if the run had never stopped (see solutions/train_ckpt.py, state_of).
KEYS = ("model", "optimizer", "epoch", "step", "rng")
# The losses of a stopped and resumed run against one uninterrupted run of the same program, in the same number of
# processes, on the same data: the very same arithmetic, step by step, so only a changed order of float sums (other
# thread counts, a library choosing another kernel after the restart) could make them differ. ddp.TOLERANCE bounds
# that for a comparison with far more rounding (two processes against one, in float64; derived in ddp.py), so it
# bounds this one too; the broken copies of tests/test_checkpoint.py miss it by many orders (they print by how much).
RESUME_TOLERANCE = TOLERANCE


def load_checkpoint(path: Path) -> tuple[dict | None, str]:
    """The checkpoint as torch.load gives it, or None and why it does not load."""
    import torch

    if not path.is_file():
        return None, f"there is no {path.name}"
    try:
        return torch.load(path, map_location="cpu", weights_only=False), ""
    except Exception as error:  # noqa: BLE001 (a truncated file raises whatever the unpickler meets)
        return None, f"{path.name} does not load ({type(error).__name__}: {str(error).splitlines()[0][:120]})"


def position(rows: list[tuple]) -> tuple[int, int]:
    """(epoch, steps trained in it) after the last line of a log."""
    if not rows:
        return 0, 0
    epoch = rows[-1][0]
    return epoch, sum(1 for row in rows if row[0] == epoch)


def stop_problems(run: Start, signal_name: str, checkpoint: Path, log: Path) -> list[str]:
    """A run that got `signal_name` stopped by itself (not killed, not hung) and left a `checkpoint` that loads,
    holds everything a resumed run needs, and is at the step where its `log` ends (no step trained after the save).
    (The files as the run left them: a later start in the same folder changes both.)"""
    if run.signalled_at is None:
        return [f"{PROGRAM} ended before the test could send {signal_name} (after {run.seconds:.0f} s): the check "
                "needs a longer run; report this to the course team"]
    if "[harness] killed" in run.ran.stderr:
        return [f"{PROGRAM} did not stop after {signal_name}: it should save at the next step and exit"]
    state, why = load_checkpoint(checkpoint)
    if state is None:
        return [f"{PROGRAM} left no checkpoint that loads after {signal_name} ({why}): the work of the run is lost. "
                f"It needs a handler for {signal_name} (signal.signal) that asks the loop to save and stop"]
    missing = [key for key in KEYS if key not in state]
    if missing:
        return [f"the checkpoint lacks {', '.join(missing)}: a resumed run needs the model, the optimizer (SGD's "
                "momentum), the epoch and step, and the random generator's state"]
    logged = position(read_log(log))
    if (state["epoch"], state["step"]) != logged:
        return [f"the checkpoint holds epoch {state['epoch']} step {state['step']}, but the log ends at epoch "
                f"{logged[0]} step {logged[1]}: save the step that was trained last, after it is logged"]
    return []


def resume_problems(rows: list[tuple], reference: list[tuple], resumed_at: int,
                    tolerance: float = RESUME_TOLERANCE) -> list[str]:
    """The log of a stopped and resumed training (the lines of both starts) has the steps of an uninterrupted run,
    each once, with the same loss within `tolerance`. `resumed_at`: the number of lines the first start wrote
    (-1: not known)."""
    if len(rows) != len(reference):
        twice = len(rows) > len(reference)
        return [f"the stopped and resumed training logged {len(rows)} steps, an uninterrupted one {len(reference)}: "
                + ("steps were trained twice (the resumed run starts at the checkpoint's epoch and step, and skips "
                   "the steps of that epoch already trained)" if twice else
                   "steps were skipped (a resumed epoch must go on after the checkpoint's step, not at the next "
                   "epoch)")]
    step = first_step_off(rows, reference, tolerance)
    if step is None:
        return []
    row, ref = rows[step], reference[step]
    where = "" if resumed_at < 0 else ", the first step after the resume" if step == resumed_at else \
        ", a step before the stop" if step < resumed_at else f", {step - resumed_at + 1} steps after the resume"
    return [f"step {step} (epoch {row[0]}{where}) has the loss {row[3]:.6f}, the uninterrupted run {ref[3]:.6f} "
            f"(difference {abs(row[3] - ref[3]):.1e}, allowed {tolerance:.1e}): the resumed run does not go on from "
            "the same state (model, optimizer, data order)"]


def order_problems(resumed: dict[int, list[list[int]]], reference: dict[int, list[list[int]]],
                   epoch: int) -> list[str]:
    """The resumed start's first DataLoader pass (the epoch it resumed) handed out each rank's pictures in the order
    the uninterrupted run had in that epoch; else the sampler was given another epoch than the checkpoint's."""
    if not resumed:
        return ["the reporter saw no DataLoader pass of the resumed training to compare"]
    for rank, passes in sorted(resumed.items()):
        if not passes or rank not in reference or epoch >= len(reference[rank]):
            return [f"the reporter saw no DataLoader pass of rank {rank} to compare"]
        got = passes[0]
        n = min(len(got), len(reference[rank][epoch]))
        if got[:n] != reference[rank][epoch][:n]:
            same = [e for e, order in enumerate(reference[rank]) if order[:n] == got[:n]]
            like = f"in the order of epoch {same[0]}" if same else "in an order of no epoch of the uninterrupted run"
            return [f"the resumed epoch {epoch} handed rank {rank} its pictures {like}: the data order repeats. The "
                    "sampler needs the training's epoch from the checkpoint (set_epoch), not the epochs of this start"]
    return []


def kill_during_save_problems(workdir: Path, before: dict) -> list[str]:
    """After a SIGKILL half-way through a save, the checkpoint still loads and is the one saved before."""
    state, why = load_checkpoint(workdir / CHECKPOINT)
    if state is None:
        return [f"after a kill in the middle of a save, {why}: the last good checkpoint is lost. Write to a temporary "
                "file and os.replace it onto the checkpoint (a rename is atomic)"]
    if (state.get("epoch"), state.get("step")) != (before.get("epoch"), before.get("step")):
        return [f"after a kill in the middle of a save the checkpoint holds epoch {state.get('epoch')} step "
                f"{state.get('step')}, not the last completed save (epoch {before.get('epoch')} step "
                f"{before.get('step')})"]
    return []


# --- the batch script --------------------------------------------------------------------------------------------

SIGNAL_OPTION = re.compile(r"^(?:(?P<where>[BR]+):)?(?P<sig>\w+)(?:@(?P<seconds>\d+))?$")
TRAP = re.compile(r"^\s*trap\s+(?:'[^']*'|\"[^\"]*\"|\S+)\s+(?P<signals>[\w ]+?)\s*(?:#.*)?$", re.M)


def signal_of(script: Path) -> tuple[str, int]:
    """The signal (without SIG) and the seconds before the time limit that `#SBATCH --signal` asks for
    (("", 0) when it asks for none)."""
    value = read_sbatch(script).options.get("signal", (0, ""))[1]
    match = SIGNAL_OPTION.match(value)
    if not match:
        return "", 0
    sig = match["sig"].upper().removeprefix("SIG")
    return sig, int(match["seconds"] or 60)


def commands(text: str) -> list[str]:
    """The script's commands, one per logical line (backslash continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.split(" #", 1)[0].strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def sbatch_problems(script: Path) -> list[str]:
    """What checkpoint.sbatch needs so that the training saves before the time limit: a signal for the batch shell
    (B:), a trap for that very signal that passes it on to the training step, srun in the background with a `wait`
    (the shell runs a trap only between commands), and output files that a requeue appends to."""
    text = script.read_text()
    options = read_sbatch(script).options
    sig, _ = signal_of(script)
    if not sig:
        return [f"{script.name} asks Slurm for no signal before the time limit: add `#SBATCH --signal=B:TERM@120`"]
    if not options["signal"][1].upper().startswith("B:"):
        return [f"{script.name}: --signal={options['signal'][1]} goes to the job's steps, not to the batch shell "
                "whose trap passes it on: write it as --signal=B:<signal>@<seconds>"]
    trapped = {name.upper().removeprefix("SIG") for match in TRAP.finditer(text) for name in match["signals"].split()}
    if sig not in trapped:
        return [f"{script.name} traps {', '.join(sorted(trapped)) or 'no signal'}, but Slurm sends SIG{sig} "
                f"(--signal=B:{sig}): the shell dies of it instead of passing it on, and the training is lost"]
    lines = commands(text)
    sruns = [line for line in lines if line.startswith("srun ")]
    if not sruns or not any(line.endswith("&") for line in sruns):
        return [f"{script.name} runs srun in the foreground: bash runs a trap only after the command in the "
                "foreground has ended, so the signal would wait for the training. Start srun with `&`, then `wait`"]
    if not any(re.match(r"wait\b", line) or " wait " in f" {line} " for line in lines):
        return [f"{script.name} starts srun in the background but never waits for it: the job would end at once"]
    if not re.search(rf"scancel\s+--signal[= ](SIG)?{sig}\b", text, re.I):
        return [f"{script.name}'s trap does not pass SIG{sig} on to the training step (`scancel --signal={sig} "
                "\"$SLURM_JOB_ID.0\"`)"]
    if options.get("open-mode", (0, ""))[1] != "append":
        return [f"{script.name}: a requeued job overwrites its output files: add `#SBATCH --open-mode=append`"]
    return []
