"""The value checks types cannot express, for the groups every method shares: `check_shared(cfg)`
rejects well-typed but unusable values with one line naming the key and the fix, before any data
or model is built. What a method owns (its `method` and `loss` keys) is checked against its code by
`cyclegan.methods.settings`; `cyclegan.training.validation.validate` runs both."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from cyclegan.data.spec import preprocessing_from_keys
from cyclegan.data.transforms import Preprocess
from cyclegan.errors import ConfigError
from cyclegan.parts.losses.adversarial import GanMode
from cyclegan.parts.networks.choices import GeneratorKind, check_image_size
from cyclegan.parts.schedule import Policy

MAX_IMG_SIZE = 4096  # one 4096 px image is 200 MB as float32 at the input alone


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_shared(cfg: Any) -> None:
    """Reject unusable values with one line that names the key and what to use instead."""
    _check(
        isinstance(cfg.seed, int) and 0 <= cfg.seed < 2**63,
        f"seed={cfg.seed}: use a non-negative integer (e.g. seed=0)",
    )
    _validate_model(cfg.model)
    _validate_optim(cfg.optim)
    _validate_schedule(cfg.schedule)
    _validate_dataset(cfg.dataset)
    _validate_networks_for_size(cfg.model, cfg.dataset, cfg.loss.get("gan_mode"))
    _validate_channels(cfg.dataset)
    _validate_trainer(cfg.trainer)
    _check(
        not cfg.trainer.device_cache or cfg.dataset.cache,
        "trainer.device_cache=true moves the dataset's image cache to the device: set "
        "dataset.cache=true too",
    )
    _check(
        not cfg.trainer.device_cache
        or str(cfg.dataset.preprocess) in ("resize_and_crop", "crop", "scale_width_and_crop"),
        f"trainer.device_cache=true needs samples of one size, and dataset.preprocess="
        f"{cfg.dataset.preprocess} keeps each image's shape: use a cropping mode or "
        "trainer.device_cache=false",
    )
    lazy = cfg.loss.get("reg_every", 1) > 1 and (
        cfg.loss.get("lambda_r1") or cfg.loss.get("lambda_r2")
    )
    _check(
        not (cfg.trainer.cuda_graphs and lazy),
        f"loss.reg_every={cfg.loss.get('reg_every')} (lazy R1/R2) changes the step every "
        f"{cfg.loss.get('reg_every')} steps, which one recorded CUDA graph cannot: set "
        "loss.reg_every=1 or trainer.cuda_graphs=false",
    )
    _check(
        cfg.optimized_mode in ("max", "min"),
        f"optimized_mode={cfg.optimized_mode}: use max or min",
    )


def _validate_model(m: Any) -> None:
    _check(
        m.n_residual_blocks >= 0, f"model.n_residual_blocks={m.n_residual_blocks}: use 0 or more"
    )
    _check(m.ngf >= 1 and m.ndf >= 1, f"model.ngf={m.ngf}, model.ndf={m.ndf}: widths must be >= 1")
    _check(m.init_gain > 0, f"model.init_gain={m.init_gain}: must be > 0")
    _check(m.n_layers_D >= 1, f"model.n_layers_D={m.n_layers_D}: must be >= 1 (default 3)")
    resnet = m.generator in (GeneratorKind.resnet, GeneratorKind.paper)
    _check(
        not (resnet and m.use_dropout),
        f"model.use_dropout=true: model.generator={m.generator} has no dropout; use "
        "model.generator=unet_128 or unet_256, or use_dropout=false",
    )


def _validate_networks_for_size(m: Any, d: Any, gan_mode: Any) -> None:
    """The training crops fit the networks: a U-Net's multiple, the PatchGAN's depth; WGAN-GP's
    interpolates need real and buffer fakes of one size."""
    spec = preprocessing_from_keys(
        d.preprocess, d.load_size, d.crop_size, d.flip, d.img_size, d.load_scale
    )
    cropped = spec.mode in (
        Preprocess.resize_and_crop,
        Preprocess.crop,
        Preprocess.scale_width_and_crop,
    )
    _check(
        cropped or m.generator not in (GeneratorKind.unet_128, GeneratorKind.unet_256),
        f"model.generator={m.generator} needs training images of fixed sides divisible by "
        f"{2 ** (7 if m.generator == GeneratorKind.unet_128 else 8)}, but dataset.preprocess="
        f"{spec.mode} keeps each image's shape; use resize_and_crop, crop or scale_width_and_crop",
    )
    _check(
        cropped or gan_mode != GanMode.wgangp,
        f"loss.gan_mode=wgangp interpolates real and past fake images, which needs one training "
        f"size, but dataset.preprocess={spec.mode} keeps each image's shape; use "
        "resize_and_crop, crop or scale_width_and_crop",
    )
    if not cropped:
        return
    try:
        for side in sorted(set(spec.crop_size)):
            check_image_size(side, m.generator, m.discriminator, m.n_layers_D)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _validate_optim(o: Any) -> None:
    _check(o.lr > 0, f"optim.lr={o.lr}: must be > 0")
    _check(
        len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
        f"optim.betas={list(o.betas)}: give two values in [0, 1), e.g. [0.5,0.999]",
    )


def _validate_schedule(s: Any) -> None:
    _check(s.n_epochs >= 1, f"schedule.n_epochs={s.n_epochs}: must be >= 1")
    if s.policy == Policy.constant:
        return  # decay_epoch is not used
    _check(
        0 <= s.decay_epoch < s.n_epochs,
        f"schedule.decay_epoch={s.decay_epoch} must be < schedule.n_epochs={s.n_epochs} "
        "(decay starts before the last epoch); lower decay_epoch or raise n_epochs",
    )


def _validate_dataset(d: Any) -> None:
    _check(
        not OmegaConf.is_missing(d, "root") if OmegaConf.is_config(d) else bool(d.root),
        "dataset.root is not set: give your images' folder, e.g. dataset=folder dataset.root=PATH "
        "(PATH holds trainA/ and trainB/)",
    )
    _check(
        d.img_size >= 16 and d.img_size % 4 == 0,
        f"dataset.img_size={d.img_size}: use a multiple of 4 that is >= 16 "
        "(the generator downsamples twice by 2; the discriminator needs room for its patches)",
    )
    _check(
        d.img_size <= MAX_IMG_SIZE,
        f"dataset.img_size={d.img_size}: use at most {MAX_IMG_SIZE} (train on crops; "
        "`python -m cyclegan.translate ... tile=1024` translates larger images)",
    )
    _check(
        d.load_scale >= 1.0, f"dataset.load_scale={d.load_scale}: must be >= 1 (resize, then crop)"
    )
    try:
        spec = preprocessing_from_keys(
            d.preprocess, d.load_size, d.crop_size, d.flip, d.img_size, d.load_scale
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for side in spec.crop_size:
        _check(
            16 <= side <= MAX_IMG_SIZE and side % 4 == 0,
            f"dataset.crop_size={d.crop_size}: use sides that are multiples of 4 from 16 to "
            f"{MAX_IMG_SIZE} (the generator downsamples twice by 2)",
        )


def _validate_channels(d: Any) -> None:
    for key in ("channels_A", "channels_B"):
        value = getattr(d, key)
        _check(value in (1, 3), f"dataset.{key}={value}: use 1 (grayscale) or 3 (RGB)")


def _validate_trainer(t: Any) -> None:
    _check(t.batch_size >= 1, f"trainer.batch_size={t.batch_size}: must be >= 1")
    _check(t.num_workers >= 0, f"trainer.num_workers={t.num_workers}: must be >= 0")
    _check(
        t.steps_per_epoch is None or t.steps_per_epoch >= 1,
        f"trainer.steps_per_epoch={t.steps_per_epoch}: use null (a full pass) or >= 1",
    )
    for key in ("log_every", "sample_every", "checkpoint_every", "eval_every"):
        value = getattr(t, key)
        _check(value >= 0, f"trainer.{key}={value}: must be >= 0 (0 disables)")
    _check(t.n_samples >= 1, f"trainer.n_samples={t.n_samples}: must be >= 1")
    _check(
        0 <= t.ema_decay < 1,
        f"trainer.ema_decay={t.ema_decay}: use 0 (off) or a value in (0, 1), e.g. 0.999",
    )
    _check(
        t.precision in ("auto", "32", "bf16-mixed", "16-mixed"),
        f"trainer.precision={t.precision}: use auto, 32, bf16-mixed or 16-mixed",
    )
    _check(
        not t.cuda_graphs or (t.precision != "16-mixed" and str(t.device) not in ("cpu", "mps")),
        f"trainer.cuda_graphs=true needs a CUDA device and no fp16 loss scaling (device="
        f"{t.device}, precision={t.precision}); set trainer.cuda_graphs=false",
    )
    _check(
        t.compile_mode in ("default", "reduce-overhead", "max-autotune"),
        f"trainer.compile_mode={t.compile_mode}: use default, reduce-overhead or max-autotune",
    )
    _check(
        t.strategy in ("auto", "single", "ddp"),
        f"trainer.strategy={t.strategy}: use auto, single or ddp",
    )
    _check(t.keep_last >= 1, f"trainer.keep_last={t.keep_last}: keep at least 1 checkpoint")
    device = str(t.device)
    _check(
        device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:"),
        f"trainer.device={device}: use auto, cpu, cuda, cuda:N or mps",
    )
