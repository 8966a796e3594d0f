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
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and every bare "cuda" of this process mean this GPU, not GPU 0
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=5))
    # --- end of your work ---
    rank, world = dist.get_rank(), dist.get_world_size()
    # --- your work ---
    sampler = torch.utils.data.DistributedSampler(data, num_replicas=world, rank=rank, seed=0)  # its share
    gpu = [local_rank] if device.type == "cuda" else None  # DDP's device_ids: the one GPU it trains on (CPU: None)
    model = torch.nn.parallel.DistributedDataParallel(make_model().to(device), device_ids=gpu)
    # --- end of your work ---
    loader = torch.utils.data.DataLoader(data, BATCH, sampler=sampler, num_workers=WORKERS, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    log, start = open("train_log.csv", "w", buffering=1) if rank == 0 else None, time.time()  # rank 0 logs
    for epoch in range(EPOCHS):
        # --- your work ---
        sampler.set_epoch(epoch)  # a new order of the pictures in every epoch, the same in every process
        # --- end of your work ---
        for x, y in loader:
            loss = train_step(model, optimizer, x, y, device)  # DDP averages the gradients in loss.backward()
            # --- your work ---
            loss = loss.detach() / world  # this process's share of the mean loss of the step
            dist.all_reduce(loss)  # in place: the sum of the shares of all processes
            # --- end of your work ---
            if log:
                print(epoch, len(x) * world, round(time.time() - start, 3), loss.item(), sep=",", file=log)
        if log:
            print(f"epoch {epoch}: loss {loss.item():.4f} after {time.time() - start:.1f} s", flush=True)
    finish(model, rank)

def finish(model, rank):  # the end of a DDP training: exercise 6 ends the same way
    # --- your work ---
    if rank == 0:  # every process holds the same model: one copy is enough
        torch.save(model.module.state_dict(), "model.pt")
    dist.destroy_process_group()
    # --- end of your work ---

if __name__ == "__main__":
    main()
