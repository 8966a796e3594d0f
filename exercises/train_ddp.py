"""Exercise 5b: train.py spread over many processes with DistributedDataParallel, one process per GPU. torchrun
starts them: `torchrun --standalone --nproc_per_node=2 train_ddp.py`; on JURECA-DC `sbatch ../slurm/ddp.sbatch`."""
import datetime, os, time

import torch, torch.distributed as dist
from datasets import HDF5Dataset
from train import BATCH, DATA, EPOCHS, LR, SIZE, WORKERS, make_model  # BATCH: pictures per process and step

def main():
    data = HDF5Dataset(DATA, size=SIZE)
    # --- your work ---
    # TODO: torchrun tells each process its LOCAL_RANK, the GPU it owns (or the CPU, where there is none): make it
    # this process's current GPU. Join the others with the backend for that device and a timeout (a lost process
    # must end the run, not hang it); then `rank`, `world`, a `sampler` giving this process its own share of `data`,
    # and `model`, wrapped for DDP on its one GPU (device_ids).
    raise NotImplementedError("TODO: join the process group; device, rank, world, sampler and the DDP model")
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
            loss = torch.nn.functional.cross_entropy(model(x.to(device).float() / 255), y.to(device))
            optimizer.zero_grad()
            loss.backward()  # DDP averages the gradients of all processes while they are computed
            optimizer.step()
            # --- your work ---
            # TODO: `loss` is this process's loss on its own BATCH pictures. Rank 0 should log the loss of the whole
            # step: the mean over all processes (a copy without the autograd graph will do).
            raise NotImplementedError("TODO: the mean loss over all processes (all_reduce), for the log")
            # --- end of your work ---
            if log:
                print(epoch, len(x) * world, round(time.time() - start, 3), loss.item(), sep=",", file=log)
        if log:
            print(f"epoch {epoch}: loss {loss.item():.4f} after {time.time() - start:.1f} s", flush=True)
    # --- your work ---
    # TODO: keep the trained network in model.pt, once, as train.py does: which process writes it, and where
    # inside the DDP wrapper are the weights? Then leave the process group.
    raise NotImplementedError("TODO: one process saves model.pt; every process leaves the process group")
    # --- end of your work ---

if __name__ == "__main__":
    main()
