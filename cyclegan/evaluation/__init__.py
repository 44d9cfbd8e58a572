"""Scoring translations: paired PSNR/SSIM (`paired`), FID/KID (`distribution`), the evaluator that
runs both (`evaluator`), the end-of-run tables (`report`) and which direction is better (`ranking`)."""
