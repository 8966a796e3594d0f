"""The course's test harness: a pytest plugin plus the pieces it drives (Slurm, sshd, TensorBoard, stand-in data)."""
