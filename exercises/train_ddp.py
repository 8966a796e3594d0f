"""Exercise 5b: train.py spread over many processes with DistributedDataParallel, one process per GPU. torchrun
starts them: `torchrun --standalone --nproc_per_node=2 train_ddp.py`; on JURECA-DC `sbatch ../slurm/ddp.sbatch`."""
import datetime, os, time

import torch, torch.distributed as dist
from datasets import HDF5Dataset
from train import BATCH, DATA, EPOCHS, LR, SIZE, WORKERS, make_model, train_step  # BATCH: pictures per process and step

def main():
    data = HDF5Dataset(DATA, size=SIZE)
    local_rank = int(os.environ["LOCAL_RANK"])  # torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for each process
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")  # a GPU of its own
    # --- your work ---
    # TODO: join the other processes: dist.init_process_group(backend, timeout=...). Which backend for `device`
    # (GPUs talk through NCCL, CPUs through gloo), and why a timeout (what if one process is lost)? On a GPU, first
    # make `device` this process's current GPU (torch.cuda.set_device), so that NCCL uses it and not GPU 0.
    raise NotImplementedError("TODO: join the process group, with the backend for the device and a timeout")
    # --- end of your work ---
    rank, world = dist.get_rank(), dist.get_world_size()
    # --- your work ---
    # TODO: `sampler`, a torch.utils.data.DistributedSampler giving this process its own share of `data` (seed 0),
    # and `model`: make_model() on `device`, wrapped in torch.nn.parallel.DistributedDataParallel (on a GPU with
    # device_ids=[local_rank], the one GPU it trains on).
    raise NotImplementedError("TODO: this process's share of the data (sampler), and the model wrapped for DDP")
    # --- end of your work ---
    loader = torch.utils.data.DataLoader(data, BATCH, sampler=sampler, num_workers=WORKERS, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    log, start = open("train_log.csv", "w", buffering=1) if rank == 0 else None, time.time()  # rank 0 logs
    for epoch in range(EPOCHS):
        # --- your work ---
        # TODO: every process shuffles with the same seed. What must the sampler learn before each epoch, so that
        # the order changes from epoch to epoch and the processes still agree on it?
        raise NotImplementedError("TODO: a new order of the pictures for each epoch, the same in every process")
        # --- end of your work ---
        for x, y in loader:
            loss = train_step(model, optimizer, x, y, device)  # DDP averages the gradients in loss.backward()
            # --- your work ---
            # TODO: `loss` is this process's loss on its own BATCH pictures. Rank 0 should log the loss of the whole
            # step: the mean over all processes (a copy without the autograd graph will do).
            raise NotImplementedError("TODO: the mean loss over all processes (all_reduce), for the log")
            # --- end of your work ---
            if log:
                print(epoch, len(x) * world, round(time.time() - start, 3), loss.item(), sep=",", file=log)
        if log:
            print(f"epoch {epoch}: loss {loss.item():.4f} after {time.time() - start:.1f} s", flush=True)
    finish(model, rank)

def finish(model, rank):  # the end of a DDP training: exercise 6 ends the same way
    # --- your work ---
    # TODO: keep the trained network in model.pt, once, as train.py does: which process writes it, and where
    # inside the DDP wrapper are the weights? Then leave the process group.
    raise NotImplementedError("TODO: one process saves model.pt; every process leaves the process group")
    # --- end of your work ---

if __name__ == "__main__":
    main()
