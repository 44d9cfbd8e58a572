"""Contrastive (PatchNCE) learning parts of CUT/FastCUT: feature taps, patch sampler, loss."""
