"""Training algorithms. Each owns its networks, optimizers, schedulers and buffers and does one
`training_step(batch) -> named losses`; the loop (`cyclegan.training.loop`) runs any of them."""
