"""Scores against real clips: PSNR, SSIM and the flow-based motion scores."""
