"""Training and fine-tuning: the loop, its settings, losses, run folder, logs and `torchrun`."""
