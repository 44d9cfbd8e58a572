"""Training algorithms. Each owns its networks, optimizers, schedulers and buffers and does one
`training_step(batch) -> named losses`; the loop (`cyclegan.loop`) runs any of them."""
