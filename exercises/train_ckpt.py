"""Exercise 6: train_ddp.py of exercise 5, made to survive the end of its job. On SIGTERM, which checkpoint.sbatch
asks Slurm to send before the time limit, every process finishes its step, rank 0 saves a checkpoint, and they stop;
the next start resumes there. `torchrun --standalone --nproc_per_node=1 train_ckpt.py` (or 2, or many nodes)."""
import datetime, itertools, os, signal, sys, time

import torch, torch.distributed as dist
from datasets import HDF5Dataset
from train import BATCH, DATA, EPOCHS, LR, SIZE, WORKERS, make_model, train_step  # BATCH: pictures per process and step
from train_ddp import finish  # exercise 5b's end: rank 0 keeps model.pt, every process leaves the group

CHECKPOINT, STOPPED = os.environ.get("CHECKPOINT", "checkpoint.pt"), 3  # STOPPED: the exit status after a stop
stop_asked = False

def ask_to_stop(signum, frame):  # a handler runs between two Python lines: it only notes the request
    global stop_asked
    stop_asked = True

def ignore_sigterm(worker_id):  # in each DataLoader worker: it dies of SIGTERM, and Slurm signals every process
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # of the step; the rank that owns it ends it when it stops

def save(state, path):
    # --- your work ---
    # TODO: write `state` to `path` so that a kill in the middle of it (the job's end does not wait) never leaves a
    # half-written checkpoint where the last good one was. Hint: a temporary file, then os.replace. Why is that safe?
    raise NotImplementedError("TODO: save the checkpoint atomically: a temporary file, then os.replace")
    # --- end of your work ---

def state_of(model, optimizer, epoch, step):  # all a resumed run needs to go on as if never stopped
    return {"model": model.module.state_dict(), "optimizer": optimizer.state_dict(),  # SGD's momentum too
            "epoch": epoch, "step": step,  # `epoch` is also the sampler's: set_epoch(epoch) repeats its order
            "rng": torch.get_rng_state()}  # here only make_model draws numbers; dropout or augmentation would too

def main():
    data = HDF5Dataset(DATA, size=SIZE)
    local_rank = int(os.environ["LOCAL_RANK"])  # torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for each process
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=5))
    rank, world = dist.get_rank(), dist.get_world_size()
    sampler = torch.utils.data.DistributedSampler(data, num_replicas=world, rank=rank, seed=0)
    gpu = [local_rank] if device.type == "cuda" else None
    model = torch.nn.parallel.DistributedDataParallel(make_model().to(device), device_ids=gpu)
    loader = torch.utils.data.DataLoader(data, BATCH, sampler=sampler, num_workers=WORKERS, drop_last=True,
                                         worker_init_fn=ignore_sigterm,  # started once, not every epoch: a SIGTERM
                                         persistent_workers=WORKERS > 0)  # never finds one before it ignores it
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    # --- your work ---
    # TODO: make SIGTERM only ask for a stop (signal.signal(..., ask_to_stop)): why not save in the handler itself?
    # Then, if CHECKPOINT exists, load it on every rank and put back the model's and the
    # optimizer's state and the random generator's, and set first_epoch and done (the epoch, and its steps trained)
    # from it; else start at 0, 0. The loop tells the sampler first_epoch: why does a resumed epoch keep its order?
    raise NotImplementedError("TODO: stop on SIGTERM, and resume from the checkpoint when there is one")
    # --- end of your work ---
    log = open("train_log.csv", "a" if done or first_epoch else "w", buffering=1) if rank == 0 else None
    start = time.time()
    for epoch in range(first_epoch, EPOCHS):
        sampler.set_epoch(epoch)  # the order of epoch `epoch`, also in a resumed one
        skip = done if epoch == first_epoch else 0  # a resumed epoch skips the steps trained before
        step = skip
        for x, y in itertools.islice(loader, skip, None):
            loss = train_step(model, optimizer, x, y, device)
            step += 1
            loss = loss.detach() / world
            dist.all_reduce(loss)
            if log:
                print(epoch, len(x) * world, round(time.time() - start, 3), loss.item(), sep=",", file=log)
            # --- your work ---
            # TODO: when any rank was asked to stop, every rank stops after this same step: agree with an all_reduce
            # (the maximum of stop_asked over the ranks). Then rank 0 saves state_of(...) with save(), every rank
            # waits until it is written (dist.barrier()), leaves the process group and exits with status STOPPED.
            raise NotImplementedError("TODO: on a stop request, all ranks agree, rank 0 saves, all exit with STOPPED")
            # --- end of your work ---
        if log and step > skip:  # not for an epoch whose last step the checkpoint already holds
            print(f"epoch {epoch}: loss {loss.item():.4f} after {time.time() - start:.1f} s", flush=True)
    if rank == 0:  # finished: a follow-up job that starts now finds nothing left to do
        save(state_of(model, optimizer, EPOCHS, 0), CHECKPOINT)
    finish(model, rank)

if __name__ == "__main__":
    main()
