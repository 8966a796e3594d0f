"""Exercise 5b: train.py spread over many processes with DistributedDataParallel, one process per GPU. torchrun
starts them: `torchrun --standalone --nproc_per_node=2 train_ddp.py`; on JURECA-DC `sbatch ../slurm/ddp.sbatch`."""
import datetime, os, time

import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from datasets import HDF5Dataset
from train import BATCH, DATA, EPOCHS, LR, SIZE, WORKERS, make_model  # BATCH: pictures per process and step


def main():
    data = HDF5Dataset(DATA, size=SIZE)
    # --- your work ---
    local_rank = int(os.environ["LOCAL_RANK"])  # torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for each process
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")  # its own GPU
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=5))
    rank, world = dist.get_rank(), dist.get_world_size()
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, seed=0)  # its share of the pictures
    model = DistributedDataParallel(make_model().to(device))
    # --- end of your work ---
    loader = DataLoader(data, BATCH, sampler=sampler, num_workers=WORKERS, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    log, start, seen = open("train_log.csv", "w", buffering=1) if rank == 0 else None, time.time(), 0
    for epoch in range(EPOCHS):
        # --- your work ---
        sampler.set_epoch(epoch)  # another order of the pictures in every epoch, the same in every process
        # --- end of your work ---
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x.to(device).float() / 255), y.to(device))
            optimizer.zero_grad()
            loss.backward()  # DDP averages the gradients of all processes while they are computed
            optimizer.step()
            seen += len(x) * world
            # --- your work ---
            dist.all_reduce(loss := loss.detach())  # in place: the sum over all processes
            loss /= world
            # --- end of your work ---
            if log:
                print(epoch, seen, round(time.time() - start, 3), loss.item(), sep=",", file=log)
        if log:
            print(f"epoch {epoch}: loss {loss.item():.4f}, {seen / (time.time() - start):.0f} pictures/s", flush=True)
    # --- your work ---
    if rank == 0:  # one copy of the model is enough: every process holds the same one
        torch.save(model.module.state_dict(), "model.pt")
    dist.destroy_process_group()
    # --- end of your work ---


if __name__ == "__main__":
    main()
