"""The MD-GAN networks, where their weights come from, the inference fast path and `SkyPipeline`."""
